"""The step batcher: concurrent calls computed together, each caller gets its own result, a failing item
fails alone, max_batch bounds a batch."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from omnigraph.nodes.common.step_batcher import StepBatcher


class Gate:
    """run_batch that holds its first batch until `release`, so the next callers queue up behind it."""

    def __init__(self):
        self.batches: list[list[int]] = []
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(60)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {items}")
        return [i * 10 for i in items]


def queued_behind_first(batcher: StepBatcher, gate: Gate, items: list[int]) -> list:
    """Call item 0 alone, then the rest while it computes; -> each call's result or error."""
    def outcome(i):
        try:
            return batcher.call(i)
        except ValueError as e:
            return e

    with ThreadPoolExecutor(len(items)) as pool:
        first = pool.submit(outcome, items[0])
        assert gate.started.wait(60)
        rest = [pool.submit(outcome, i) for i in items[1:]]
        deadline = time.monotonic() + 60
        while len(batcher._waiting) < len(rest):  # every later call queued
            assert time.monotonic() < deadline, "the calls did not queue"
            threading.Event().wait(0.001)
        gate.release.set()
        return [first.result(60)] + [f.result(60) for f in rest]


def test_calls_waiting_together_are_one_batch_and_each_gets_its_result() -> None:
    gate = Gate()
    batcher = StepBatcher(gate, max_batch=8, name="test")
    assert queued_behind_first(batcher, gate, [1, 2, 3, 4, 5]) == [10, 20, 30, 40, 50]
    assert gate.batches[0] == [1] and sorted(gate.batches[1]) == [2, 3, 4, 5] and batcher.peak_batch == 4


def test_max_batch_bounds_every_batch() -> None:
    gate = Gate()
    batcher = StepBatcher(gate, max_batch=3, name="test")
    assert queued_behind_first(batcher, gate, list(range(1, 9))) == [10 * i for i in range(1, 9)]
    assert max(len(b) for b in gate.batches) == 3 and sum(map(len, gate.batches)) >= 8


def test_a_failing_item_fails_alone() -> None:
    gate = Gate()
    batcher = StepBatcher(gate, max_batch=8, name="test")
    outcomes = queued_behind_first(batcher, gate, [1, 2, -3, 4])
    assert outcomes[:2] == [10, 20] and outcomes[3] == 40
    assert isinstance(outcomes[2], ValueError) and "[-3]" in str(outcomes[2])


def test_closed_batcher_refuses_calls() -> None:
    batcher = StepBatcher(lambda items: items, max_batch=2, name="test")
    assert batcher.call(7) == 7
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.call(1)


class ThreadRecordingGate(Gate):
    def __init__(self):
        super().__init__()
        self.threads: list[threading.Thread] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.threads.append(threading.current_thread())
        return super().__call__(items)


def test_batches_compute_in_the_callers_threads() -> None:
    """A call finding the batcher idle computes in its own thread (no hop); a queued batch in a caller's."""
    alone = ThreadRecordingGate()
    alone.release.set()
    assert StepBatcher(alone, max_batch=8, name="test").call(3) == 30
    assert alone.threads == [threading.current_thread()]
    gate = ThreadRecordingGate()
    batcher = StepBatcher(gate, max_batch=8, name="test")
    assert queued_behind_first(batcher, gate, [1, 2, 3]) == [10, 20, 30]
    assert [len(b) for b in gate.batches] == [1, 2]
    assert all(t.name.startswith("ThreadPoolExecutor") for t in gate.threads)  # the callers' pool threads


def test_an_interrupted_waiting_caller_leaves_the_queue_and_the_others_go_on() -> None:
    """Ctrl-C while the main thread waits in `call`: it leaves the queue, and the caller behind it still gets
    its turn to compute (instead of waiting for a turn handed to the interrupted caller)."""
    import signal

    gate = Gate()
    batcher = StepBatcher(gate, max_batch=8, name="test")
    results: dict[int, int] = {}

    def call(i: int) -> threading.Thread:  # daemon threads: a hang fails the test instead of blocking its exit
        thread = threading.Thread(target=lambda: results.__setitem__(i, batcher.call(i)), daemon=True)
        thread.start()
        return thread

    def wait_queued(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(batcher._waiting) < n:
            assert time.monotonic() < deadline, "the calls did not queue"
            threading.Event().wait(0.001)

    def queue_behind_main_then_interrupt() -> None:
        wait_queued(1)  # the main thread
        threads.append(call(2))
        wait_queued(2)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threads = [call(1)]
        assert gate.started.wait(60)
        threading.Thread(target=queue_behind_main_then_interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            batcher.call(5)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(batcher._waiting) == 1
    gate.release.set()
    for thread in threads:
        thread.join(60)
    assert results == {1: 10, 2: 20} and [sorted(b) for b in gate.batches] == [[1], [2]]
