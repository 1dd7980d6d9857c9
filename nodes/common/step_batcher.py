"""Batched calls from concurrent runs: each run calls `call(item)` from its own thread and blocks; one server
thread takes every item waiting (at most `max_batch`) and computes them with one `run_batch(items)` call, so the
weights are read once for all of them. Runs that step in lockstep (a Talker frame, a code predictor frame, an
encoder prompt) fall into the same batch with no waiting window: while one batch computes, the next gathers.

Runs stepping in lockstep can still settle into alternating half batches (those served call again while the
others compute, and the others are taken at once); with `regroup` r > 0, the server first waits for the last
batch's callers to call again (or to `leave`: no more calls for now), at most r times as long as that batch took.

If a batch raises, its items are recomputed one by one, so only the item that fails gets the error and the
others their results. A `run_batch` whose items change state (a KV cache), so that recomputing them is wrong,
instead returns an exception as a failing item's result: that caller gets it raised, the others their results.

`ready(waiting items)`, when given, holds the next batch until it says the batch is complete (a server that
knows which callers are about to call again waits for them, so lockstep runs stay in one batch whatever the
thread scheduling); it must never wait for a caller that will not call. `submit` queues an item without waiting
for its result. The thread starts with the first call and ends when no item is waiting. `close` (also run at
interpreter exit) refuses new items and waits for the thread, so no torch work runs while the interpreter
finalizes.
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

import torch

from ...runtime.device import adopt_thread_count

Item = TypeVar("Item")
Result = TypeVar("Result")
CLOSE_WAIT = 10.0  # seconds `close` waits for the server thread to end its batch


class StepBatcher(Generic[Item, Result]):
    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result]], max_batch: int, name: str,
                 regroup: float = 0.0, ready: Callable[[list[Item]], bool] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1 (got {max_batch})")
        self.run_batch, self.max_batch, self.name = run_batch, max_batch, name
        self.regroup, self.ready = regroup, ready
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # an item came, a caller left, or the batcher closed
        self._expected: set[int] = set()  # threads of the last batch not called again yet (with regroup)
        self._waiting: deque[tuple[Item, Future, int]] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.peak_batch = 0  # the largest batch computed (for tests and benchmarks)
        atexit.register(_close_at_exit, weakref.ref(self))

    def call(self, item: Item) -> Result:
        """`item`'s result, computed in a batch with the items other threads are waiting on."""
        return self.submit(item).result()

    def submit(self, item: Item) -> Future:
        """Queue `item`; -> the future of its result."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                future.set_exception(RuntimeError(f"{self.name}: closed (the process is exiting)"))
                return future
            self._waiting.append((item, future, threading.get_ident()))
            self._back(threading.get_ident())
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
        return future

    def leave(self) -> None:
        """The calling thread makes no more calls for now: the server need not wait for it (see `regroup`)."""
        with self._lock:
            self._back(threading.get_ident())

    def _back(self, thread: int) -> None:
        self._expected.discard(thread)
        if not self._expected:
            self._changed.notify_all()

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _serve(self) -> None:
        adopt_thread_count()
        took = 0.0  # seconds the last batch computed
        with torch.inference_mode():
            while True:
                with self._lock:
                    if self._expected:
                        self._changed.wait_for(lambda: not self._expected or len(self._waiting) >= self.max_batch,
                                               self.regroup * took)
                        self._expected.clear()
                    while self._waiting and not self._closed and self.ready is not None and not self.ready(
                            [item for item, _, _ in self._waiting]):
                        self._changed.wait()
                    if not self._waiting:
                        self._thread = None
                        return
                    batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
                    if self.regroup:
                        self._expected = {thread for _, _, thread in batch}
                self.peak_batch = max(self.peak_batch, len(batch))
                start = time.perf_counter()
                self._compute(batch)
                took = time.perf_counter() - start

    def _compute(self, batch: list[tuple[Item, Future, int]]) -> None:
        try:
            results = self.run_batch([item for item, _, _ in batch])
        except BaseException as error:  # noqa: BLE001 - each caller gets its own item's outcome
            if len(batch) == 1 or not isinstance(error, Exception):
                for _, future, _ in batch:
                    future.set_exception(error)
                return
            for one in batch:
                self._compute([one])
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _close_at_exit(batcher: weakref.ref[StepBatcher]) -> None:
    alive = batcher()
    if alive is not None:
        alive.close()
