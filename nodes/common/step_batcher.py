"""Batched calls from concurrent runs: each run calls `call(item)` from its own thread and blocks; one server
thread takes every item waiting (at most `max_batch`) and computes them with one `run_batch(items)` call, so the
weights are read once for all of them. While one batch computes, the next gathers.

Lockstep (`lockstep=True`): runs that step together (a Talker frame, a Code2Wav chunk) call with a `key` of
their own. Once a key's item is computed, the key is "out": its run is busy with the result and calls again
soon, so the next batch waits until no key is out (or `max_batch` items wait); a key whose item failed is not
out. No time window: a run about to wait for anything other than this batcher (its input, its consumer) says
`away(key)` first and `back(key)` once it has its input, and `leave(key)` when it makes no more calls; so the
batcher never waits for a caller that will not call, whatever the thread scheduling. `urgent` items (a newcomer's prefill or first chunk, a
release) go first: those waiting are computed on their own before the next batch, without waiting for it.

An away run whose input another thread is handing on (a Talker batch computed the frames that several
Code2Wav streams will read) is announced with `coming(key, index)`: until the run says it has input `index`
(`back(key, index)`) or leaves, batches wait for it as for a key that is out, so the runs stepped together
upstream are computed together here. The wait is bounded (COMING_WAIT after the notice), so an input that never
arrives (its run cancelled or failed upstream) holds the others at most that long, and not at all once the run
leaves.

If a batch raises, its items are recomputed one by one, so only the item that fails gets the error and the
others their results. A `run_batch` whose items change state (a KV cache), so that recomputing them is wrong,
instead returns an exception as a failing item's result: that caller gets it raised, the others their results.

`submit` queues an item without waiting for its result. The thread starts with the first call and ends when no
item is waiting. `close` (also run at interpreter exit) refuses new items and waits for the thread, so no torch
work runs while the interpreter finalizes.
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

import torch

from ...runtime.daemon_threads import start_daemon
from ...runtime.device import adopt_thread_count

Item = TypeVar("Item")
Result = TypeVar("Result")
CLOSE_WAIT = 10.0  # seconds `close` waits for the server thread to end its batch
COMING_WAIT = 0.25  # seconds batches wait at most for an input announced by `coming`


@dataclass(eq=False)
class Waiting:
    item: Any
    future: Future
    key: Hashable | None  # the caller, with lockstep
    urgent: bool


class StepBatcher(Generic[Item, Result]):
    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result]], max_batch: int, name: str,
                 lockstep: bool = False):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1 (got {max_batch})")
        self.run_batch, self.max_batch, self.name, self.lockstep = run_batch, max_batch, name, lockstep
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # an item came, a key came back or left, or closed
        self._out: set[Hashable] = set()  # keys whose result was handed over and that have not called again
        self._waiting: deque[Waiting] = deque()
        self._coming: dict[Hashable, tuple[int, float]] = {}  # key -> (announced input index, deadline)
        self._arrived: dict[Hashable, int] = {}  # key -> the last input index it said it has
        self._thread: threading.Thread | None = None
        self._closed = False
        self.peak_batch = 0  # the largest batch computed (for tests and benchmarks)
        atexit.register(_close_at_exit, weakref.ref(self))

    def call(self, item: Item, key: Hashable | None = None, urgent: bool = False) -> Result:
        """`item`'s result, computed in a batch with the items other threads are waiting on."""
        return self.submit(item, key, urgent).result()

    def submit(self, item: Item, key: Hashable | None = None, urgent: bool = False) -> Future:
        """Queue `item` (of the caller `key`, with lockstep); -> the future of its result."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                future.set_exception(RuntimeError(f"{self.name}: closed (the process is exiting)"))
                return future
            self._waiting.append(Waiting(item, future, key, urgent))
            self._out.discard(key)
            self._changed.notify_all()
            if self._thread is None:
                self._thread = start_daemon(self._serve, self.name)
        return future

    def away(self, key: Hashable) -> None:
        """`key`'s run waits for its input: batches do not wait for it until it is `back` or calls."""
        self._set_out(key, False)

    def back(self, key: Hashable, index: int | None = None) -> None:
        """`key`'s run has its input (number `index`, when its inputs were announced): its call comes next, and
        the next batch waits for it."""
        self._set_out(key, True, index)

    def leave(self, key: Hashable) -> None:
        """`key`'s run makes no more calls."""
        if not self.lockstep:
            return
        with self._lock:
            self._coming.pop(key, None)
            self._arrived.pop(key, None)
            self._out.discard(key)
            self._changed.notify_all()

    def coming(self, key: Hashable, index: int) -> None:
        """Input `index` (0, 1, ... in order) of `key`'s run is on its way to it: batches wait for the key until
        it is `back(key, index)` or leaves, at most COMING_WAIT from now."""
        if not self.lockstep:
            return
        with self._lock:
            if index > self._arrived.get(key, -1):
                self._coming[key] = (max(index, self._coming.get(key, (index, 0.0))[0]),
                                     time.monotonic() + COMING_WAIT)

    def _set_out(self, key: Hashable, out: bool, index: int | None = None) -> None:
        if not self.lockstep:
            return
        with self._lock:
            if index is not None:
                self._arrived[key] = index
                if self._coming.get(key, (index, 0.0))[0] <= index:
                    self._coming.pop(key, None)
            if out:
                self._out.add(key)
            else:
                self._out.discard(key)
                self._changed.notify_all()

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _complete(self) -> bool:
        """Whether the waiting items make the next batch (lock held)."""
        return ((not self._out and not self._awaited_coming()) or len(self._waiting) >= self.max_batch
                or self._closed)

    def _awaited_coming(self) -> bool:
        """Whether a key with no item waiting has an input on its way, within its deadline (lock held)."""
        now = time.monotonic()
        for key in [k for k, (_, deadline) in self._coming.items() if deadline <= now]:
            del self._coming[key]
        return bool(self._coming.keys() - {w.key for w in self._waiting})

    def _next_batch(self) -> list[Waiting] | None:
        """Wait for the next batch: the urgent items waiting, else every item once complete; None when no item
        waits (lock held)."""
        while not (self._complete() or any(w.urgent for w in self._waiting)):
            deadlines = [deadline for _, deadline in self._coming.values()]
            self._changed.wait(max(0.0, min(deadlines) - time.monotonic()) if deadlines else None)
        if not self._waiting:
            return None
        batch = [w for w in self._waiting if w.urgent][:self.max_batch]
        if not batch:
            return [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
        taken = set(map(id, batch))
        self._waiting = deque(w for w in self._waiting if id(w) not in taken)
        return batch

    def _serve(self) -> None:
        adopt_thread_count()
        with torch.inference_mode():
            while True:
                with self._lock:
                    batch = self._next_batch()
                    if batch is None:
                        self._thread = None
                        return
                self.peak_batch = max(self.peak_batch, len(batch))
                self._compute(batch)

    def _compute(self, batch: list[Waiting]) -> None:
        try:
            results = self.run_batch([w.item for w in batch])
        except BaseException as error:  # noqa: BLE001 - each caller gets its own item's outcome
            if len(batch) == 1 or not isinstance(error, Exception):
                self._hand_over([(w, error) for w in batch])
                return
            for one in batch:
                self._compute([one])
            return
        self._hand_over(list(zip(batch, results, strict=True)))

    def _hand_over(self, outcomes: list[tuple[Waiting, object]]) -> None:
        """Mark the keys that got a result out (before their callers can call again; a caller that got an error
        is not waited for), then resolve each future."""
        if self.lockstep:
            with self._lock:
                self._out.update(w.key for w, outcome in outcomes
                                 if w.key is not None and not isinstance(outcome, BaseException))
        for w, outcome in outcomes:
            if isinstance(outcome, BaseException):
                w.future.set_exception(outcome)
            else:
                w.future.set_result(outcome)


def _close_at_exit(batcher: weakref.ref[StepBatcher]) -> None:
    alive = batcher()
    if alive is not None:
        alive.close()
