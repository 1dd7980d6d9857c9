"""Batches formed deterministically: a StepBatcher's first batch is held until the later calls have queued
behind it, so they form the next batch together (no timing involved)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

WAIT = 120  # seconds: the bound on waiting for a condition (never reached unless something hangs)


class HeldFirstBatch:
    """Wraps `batcher.run_batch`: records every batch's size; the first batch waits until `release` is set."""

    def __init__(self, batcher):
        self.batcher, self.inner = batcher, batcher.run_batch
        self.sizes: list[int] = []
        self.started, self.release = threading.Event(), threading.Event()
        batcher.run_batch = self

    def __call__(self, items: list) -> Any:
        self.sizes.append(len(items))
        if len(self.sizes) == 1:
            self.started.set()
            assert self.release.wait(WAIT), "the held batch was never released"
        return self.inner(items)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        threading.Event().wait(0.001)


def outcome(call: Callable[[], Any]) -> Any:
    """call()'s result, or the exception it raised."""
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - the test looks at it
        return error


def queued_together(batcher, calls: list[Callable[[], Any]]) -> tuple[list[Any], HeldFirstBatch]:
    """calls[0] alone in a held batch, then calls[1:] from their own threads; each of those either fails before
    reaching the batcher or queues, and once all have, the batch is released. -> (each call's result or
    exception, the gate with the batch sizes)."""
    gate = HeldFirstBatch(batcher)
    with ThreadPoolExecutor(len(calls)) as pool:
        first = pool.submit(outcome, calls[0])
        assert gate.started.wait(WAIT)
        rest = [pool.submit(outcome, call) for call in calls[1:]]
        wait_until(lambda: len(batcher._waiting) + sum(f.done() for f in rest) == len(rest), "the calls queued")
        gate.release.set()
        return [first.result(WAIT)] + [f.result(WAIT) for f in rest], gate
