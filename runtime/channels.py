"""Bounded single-consumer channels between node threads, with end-of-stream, absence and cancellation."""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Iterator


class Cancelled(Exception):
    """The run was cancelled (another node failed, or the caller stopped it)."""


class Absent(Exception):
    """The producer never produced this value (it was skipped, or chose not to emit it)."""


class Channel:
    """A FIFO of items from one producer to one consumer, blocking `put` when `capacity` items wait."""

    __slots__ = ("_items", "_capacity", "_lock", "_not_empty", "_not_full", "_live", "_closed", "_absent",
                 "_detached", "_cancel", "count")

    def __init__(self, capacity: int, cancel: threading.Event):
        self._items: deque = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._live = False  # the producer decided to run
        self._closed = False
        self._absent = False
        self._detached = False  # the consumer is gone: drop what is put
        self._cancel = cancel
        self.count = 0  # items put so far

    def open(self) -> None:
        """The producer is running: a consumer waiting in `wait_decided` may start."""
        with self._lock:
            self._live = True
            self._not_empty.notify_all()

    def wait_decided(self) -> bool:
        """Block until the producer runs (True) or is known never to produce (False)."""
        with self._lock:
            while not (self._live or self._closed or self._items):
                if self._cancel.is_set():
                    raise Cancelled
                self._not_empty.wait()
            return not (self._closed and self._absent)

    def detach(self) -> None:
        """The consumer finished: unblock the producer and drop whatever it still sends."""
        with self._lock:
            self._detached = True
            self._items.clear()
            self._not_full.notify_all()

    def put(self, item: Any) -> None:
        with self._lock:
            if self._detached:
                return
            while len(self._items) >= self._capacity and not (self._cancel.is_set() or self._detached):
                self._not_full.wait()
            if self._cancel.is_set():
                raise Cancelled
            if self._detached:
                return
            self._items.append(item)
            self.count += 1
            if self._not_empty._waiters:  # skip the notify call when nobody waits
                self._not_empty.notify()

    def close(self, *, absent: bool = False) -> None:
        """No more items. `absent` marks a value that was never produced (only before any item)."""
        with self._lock:
            self._closed = True
            self._absent = absent and self.count == 0
            self._live = True
            self._not_empty.notify_all()

    def wake(self) -> None:
        """Wake blocked callers so they see the cancellation."""
        with self._lock:
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def get(self) -> Any:
        """The next item; raises StopIteration at the end, Absent if never produced, Cancelled on cancel."""
        with self._lock:
            self._wait_for_item()
            item = self._items.popleft()
            if self._not_full._waiters:
                self._not_full.notify()
            return item

    def get_many(self, limit: int) -> list[Any]:
        """Wait for one item, then take up to `limit` already queued (a batch for a slower hop); raises as `get`."""
        with self._lock:
            self._wait_for_item()
            items = [self._items.popleft() for _ in range(min(limit, len(self._items)))]
            self._not_full.notify_all()
            return items

    def _wait_for_item(self) -> None:
        """With the lock held: return once an item waits, or raise why none will come."""
        while not self._items:
            if self._cancel.is_set():
                raise Cancelled
            if self._closed:
                raise Absent if self._absent else StopIteration
            self._not_empty.wait()

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                yield self.get()
            except StopIteration:
                return
