"""The step batcher: concurrent calls computed together, each caller gets its own result, a failing item
fails alone, max_batch bounds a batch."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from omnigraph.nodes.common import step_batcher
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


def test_lockstep_callers_stay_one_batch_and_a_leaving_one_is_not_waited_for() -> None:
    """Callers served while others wait would settle into alternating batches; with lockstep every batch after
    the first waits for the callers it served, until they leave."""
    gate = Gate()
    batcher = StepBatcher(gate, max_batch=8, name="test", lockstep=True)

    def run(first: int) -> list[int]:
        results = [batcher.call(first + i, key=first) for i in range(4)]
        batcher.leave(first)  # no more calls from this caller
        return results

    with ThreadPoolExecutor(3) as pool:
        a = pool.submit(run, 100)
        assert gate.started.wait(60)
        rest = [pool.submit(run, first) for first in (200, 300)]
        deadline = time.monotonic() + 60
        while len(batcher._waiting) < 2:
            assert time.monotonic() < deadline, "the calls did not queue"
            threading.Event().wait(0.001)
        gate.release.set()
        outcomes = [f.result(60) for f in (a, *rest)]
    assert outcomes == [[10 * (first + i) for i in range(4)] for first in (100, 200, 300)]
    assert [len(b) for b in gate.batches] == [1, 3, 3, 3, 2]


def test_lockstep_waits_for_a_served_caller_unless_it_is_away_and_urgent_items_go_between() -> None:
    batches = []
    batcher = StepBatcher(lambda items: batches.append(sorted(items)) or items, max_batch=8, name="test",
                          lockstep=True)
    assert batcher.call(1, key="a") == 1  # "a" is out: the next batch waits for it
    held = batcher.submit(2, key="b")
    assert batcher.call(3, key="c", urgent=True) == 3  # a newcomer goes between, alone
    batcher.leave("c")
    assert not held.done()
    batcher.away("a")  # "a" waits for its input: no batch waits for it
    assert held.result(60) == 2
    batcher.back("a")  # "a" has its input again: its call comes next
    later = batcher.submit(4, key="b")
    assert not later.done()
    assert batcher.call(5, key="a") == 5 and later.result(60) == 4
    assert batches == [[1], [3], [2], [4, 5]]


class ReportingGate(Gate):
    """A gate whose run_batch reports a negative item's failure as its result instead of raising."""

    def __call__(self, items: list[int]) -> list:
        super().__call__([abs(i) for i in items])
        self.batches[-1] = list(items)
        return [ValueError(f"negative item {i}") if i < 0 else i * 10 for i in items]


def test_an_exception_result_is_raised_in_its_caller_only_and_nothing_is_recomputed() -> None:
    gate = ReportingGate()
    batcher = StepBatcher(gate, max_batch=8, name="test")
    outcomes = queued_behind_first(batcher, gate, [1, 2, -3, 4])
    assert outcomes[:2] == [10, 20] and outcomes[3] == 40
    assert isinstance(outcomes[2], ValueError) and "negative item -3" in str(outcomes[2])
    assert sorted(i for b in gate.batches for i in b) == [-3, 1, 2, 4]  # every item computed once


def test_submit_to_a_closed_batcher_gives_a_failed_future() -> None:
    batcher = StepBatcher(lambda items: items, max_batch=2, name="test")
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1).result(60)


def test_lockstep_does_not_wait_for_a_caller_whose_item_failed() -> None:
    batcher = StepBatcher(lambda items: [ValueError("bad") if i < 0 else i for i in items], max_batch=8,
                          name="test", lockstep=True)
    with pytest.raises(ValueError):
        batcher.call(-1, key="a")  # "a" got an error: it may never call again
    assert batcher.call(2, key="b") == 2


def recording_batcher() -> tuple[StepBatcher, list[list[int]]]:
    batches: list[list[int]] = []
    return StepBatcher(lambda items: batches.append(sorted(items)) or items, max_batch=8, name="test",
                       lockstep=True), batches


def test_keys_whose_inputs_are_coming_are_waited_for_and_computed_in_one_batch(monkeypatch) -> None:
    """Two runs stepped together upstream: the first input to arrive is not computed alone."""
    monkeypatch.setattr(step_batcher, "COMING_WAIT", 600.0)  # only the condition ends the wait here
    batcher, batches = recording_batcher()
    for key in "ab":
        batcher.away(key)
        batcher.coming(key, 0)
    batcher.back("a", 0)
    held = batcher.submit(1, key="a")
    assert batcher.call(9, key="u", urgent=True) == 9  # the server went past "a"'s item and held it
    batcher.leave("u")
    assert not held.done()  # "b"'s input is on its way
    batcher.back("b", 0)
    assert batcher.call(2, key="b") == 2 and held.result(60) == 1
    assert batches == [[9], [1, 2]]
    batcher.away("a"), batcher.away("b")
    batcher.coming("b", 0)  # an input the run already has: nothing to wait for
    assert batcher.call(3, key="a") == 3


def test_a_coming_key_that_leaves_is_not_waited_for(monkeypatch) -> None:
    """A run cancelled or failed upstream, whose input never comes, releases the others at once."""
    monkeypatch.setattr(step_batcher, "COMING_WAIT", 600.0)
    batcher, batches = recording_batcher()
    for key in "ab":
        batcher.coming(key, 4)
    held = batcher.submit(1, key="a")
    assert batcher.call(9, key="u", urgent=True) == 9
    batcher.leave("u")
    assert not held.done()
    batcher.leave("b")
    assert held.result(60) == 1 and batches == [[9], [1]]


def test_a_coming_input_that_never_arrives_holds_the_others_only_within_the_bound(monkeypatch) -> None:
    monkeypatch.setattr(step_batcher, "COMING_WAIT", 0.05)
    batcher, batches = recording_batcher()
    batcher.coming("b", 0)  # and "b" never says it has it
    assert batcher.call(1, key="a") == 1 and batches == [[1]]
