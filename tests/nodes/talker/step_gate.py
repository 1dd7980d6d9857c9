"""Deterministic batches for the Talker / code predictor batching tests: hold a server's first batch until the
other runs' items are queued behind it, whatever the thread scheduling."""
from __future__ import annotations

import threading
import time

WAIT = 120  # seconds: the bound on waiting for a condition (never reached unless something hangs)


class HoldFirstBatch:
    """Wraps a StepBatcher's run_batch: the first batch with an item of `kind` waits until `total` such items are
    in it or queued behind it (the next batch then computes those together)."""

    def __init__(self, batcher, kind: type, total: int):
        self.batcher, self.kind, self.total, self.inner = batcher, kind, total, batcher.run_batch
        self.held = threading.Event()
        batcher.run_batch = self

    def count(self, items) -> int:
        return sum(isinstance(i, self.kind) for i in items)

    def __call__(self, items):
        if not self.held.is_set() and self.count(items):
            self.held.set()
            deadline = time.monotonic() + WAIT
            while self.count(items) + self.count(w.item for w in list(self.batcher._waiting)) < self.total:
                assert time.monotonic() < deadline, f"{self.total} {self.kind.__name__} items did not queue"
                threading.Event().wait(0.001)
        return self.inner(items)


def hold_first_batches(talker, code_predictor, runs: int) -> HoldFirstBatch:
    """The first batch of the Talker's server waits until `runs` prefills are queued, so the runs join in at
    most two batches and then step together (lockstep); unfused, the code predictor's first batch also waits
    for `runs` frames. -> the Talker's gate."""
    from omnigraph.nodes.qwen3.loop_handoff import FrameItem
    from omnigraph.nodes.talker.server import Prefill

    if code_predictor.handoff is None:
        HoldFirstBatch(code_predictor._server._batcher, FrameItem, runs)
    return HoldFirstBatch(talker._server._batcher, Prefill, runs)
