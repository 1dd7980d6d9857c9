"""Batched calls from concurrent runs: each run calls `call(item)` from its own thread and blocks; the items
waiting (at most `max_batch`) are computed together with one `run_batch(items)` call, so the weights are read
once for all of them. Runs that step in lockstep (a Talker frame, a code predictor frame, an encoder prompt) fall
into the same batch with no waiting window: while one batch computes, the next gathers.

The batches are computed by the callers' own threads, one at a time: a call that finds the batcher idle
computes at once (a run alone costs what it cost without batching: no thread hop), and when its batch is done
the oldest waiting caller computes the next batch. If a batch raises, its items are recomputed one by one, so
only the item that fails gets the error and the others their results. `close` (also run at interpreter exit)
refuses new items and waits for the batch in progress, so no torch work runs while the interpreter finalizes.
"""
from __future__ import annotations

import atexit
import threading
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

import torch

Item = TypeVar("Item")
Result = TypeVar("Result")
CLOSE_WAIT = 10.0  # seconds `close` waits for the batch in progress


class _Call:
    """One waiting item: its future, and `wake`, set when its result is in or when its thread is to compute."""

    def __init__(self, item):
        self.item, self.future, self.wake, self.computes = item, Future(), threading.Event(), False


class StepBatcher(Generic[Item, Result]):
    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result]], max_batch: int, name: str):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1 (got {max_batch})")
        self.run_batch, self.max_batch, self.name = run_batch, max_batch, name
        self._lock = threading.Lock()
        self._waiting: deque[_Call] = deque()
        self._busy = False  # a caller is computing a batch
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self.peak_batch = 0  # the largest batch computed (for tests and benchmarks)
        atexit.register(_close_at_exit, weakref.ref(self))

    def call(self, item: Item) -> Result:
        """`item`'s result, computed in a batch with the items other threads are waiting on."""
        me = _Call(item)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: closed (the process is exiting)")
            self._waiting.append(me)
            me.computes = not self._busy
            self._busy = True
        if not me.computes:
            try:
                me.wake.wait()
            except BaseException:  # e.g. Ctrl-C in the main thread: leave the queue, pass on a turn it was given
                self._leave(me)
                raise
        if not me.future.done():  # this thread's turn: its item heads the queue
            self._compute_next()
        return me.future.result()

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        with self._lock:
            self._closed = True
            self._idle.wait_for(lambda: not self._busy, timeout)

    def _compute_next(self) -> None:
        """Compute the batch at the head of the queue, then hand the turn to the oldest waiting caller."""
        try:
            with self._lock:
                batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            self.peak_batch = max(self.peak_batch, len(batch))
            # A thread's OpenMP team has the default size, not torch.set_num_threads's: with the process pinned
            # to fewer cores than that, every op of a fresh thread was ~70x slower (spinning threads, one core).
            torch.set_num_threads(torch.get_num_threads())
            with torch.inference_mode():
                self._compute(batch)
        finally:
            with self._lock:
                self._pass_turn()

    def _pass_turn(self) -> None:
        """(Lock held.) The turn to compute goes to the oldest waiting caller; none: the batcher is idle."""
        if self._waiting:
            self._waiting[0].wake.set()
        else:
            self._busy = False
            self._idle.notify_all()

    def _leave(self, me: _Call) -> None:
        with self._lock:
            if me in self._waiting:
                had_turn = me.wake.is_set() and not me.future.done()
                self._waiting.remove(me)
                if had_turn:
                    self._pass_turn()

    def _compute(self, batch: list[_Call]) -> None:
        try:
            results = self.run_batch([call.item for call in batch])
        except BaseException as error:  # noqa: BLE001 - each caller gets its own item's outcome
            if len(batch) == 1 or not isinstance(error, Exception):
                for call in batch:
                    call.future.set_exception(error)
                    call.wake.set()
                return
            for one in batch:
                self._compute([one])
            return
        for call, result in zip(batch, results, strict=True):
            call.future.set_result(result)
            call.wake.set()


def _close_at_exit(batcher: weakref.ref[StepBatcher]) -> None:
    alive = batcher()
    if alive is not None:
        alive.close()
