"""Deterministic overlap for concurrent request mixes through LocalExecutor (tests/test_concurrent_mixes.py): hold
a loaded node's first batch until enough runs have queued behind it, whatever the thread scheduling."""
from __future__ import annotations

import threading

from held_batch import WAIT, wait_until

from omnigraph.runtime.context import current_run


def hold_first_batch(batcher, total: int, kind: type = object) -> list[int]:
    """Wraps a StepBatcher's run_batch: the first batch holding an item of `kind` waits until `total` such items
    are in it or queued behind it; -> the sizes of every batch, as they are computed."""
    inner, sizes, held = batcher.run_batch, [], threading.Event()

    def count(items) -> int:
        return sum(isinstance(item, kind) for item in items)

    def run_batch(items):
        sizes.append(len(items))
        if not held.is_set() and count(items):
            held.set()
            wait_until(lambda: count(items) + count(w.item for w in list(batcher._waiting)) >= total,
                       f"{total} {kind.__name__} items queued in {batcher.name}")
        return inner(items)

    batcher.run_batch = run_batch
    return sizes


class ThinkerGate:
    """On a loaded thinker node: its engine computes nothing until `runs` requests were submitted (so they are all
    waiting together, and max_batch decides who joins when); with `hold_victim`, the first decode step (the
    second token of its first request) waits until that request's run is cancelled (`victim` is set while it
    waits, `victim_seed` names the run): it leaves mid-stream while every other run is still in the engine."""

    def __init__(self, thinker, runs: int, *, hold_victim: bool = False):
        engine = thinker._engine
        self.engine, self.runs, self.hold_victim = engine, runs, hold_victim
        self.submitted: dict[int, object] = {}  # id(request) -> run seed
        self.victim, self.victim_seed = threading.Event(), None
        submit, prefill, decode = engine.submit, engine.model.prefill, engine.model.decode

        def counted_submit(request):
            self.submitted[id(request)] = current_run().seed
            return submit(request)

        def gated_prefill(*args):
            wait_until(lambda: len(self.submitted) >= self.runs, f"{self.runs} runs reached the thinker")
            return prefill(*args)

        def held_decode(cache, rows, tokens, requests):
            if self.hold_victim and not self.victim.is_set():
                self.victim_seed = self.submitted[id(requests[0])]
                self.victim.set()
                assert requests[0].cancelled.wait(WAIT), "the held run was never cancelled"
            return decode(cache, rows, tokens, requests)

        engine.submit, engine.model.prefill, engine.model.decode = counted_submit, gated_prefill, held_decode
