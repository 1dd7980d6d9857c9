"""The forward passes of one loaded Talker for every concurrent run (nodes/common/step_batcher.py). One server
thread owns a KVCache of many slots: a run takes a slot with its prefill (`prefill`), steps once per frame
(`step`: the steps waiting together are one decode over their rows, ragged lengths masked) and gives the slot
back (`release`). Only the server thread touches the cache (growth reallocates it); once no slot is live the
cache is dropped, so memory follows the live runs. Sampling stays with each run (node.py).

Lockstep without a time window: a run that got its outputs is "out" (sampling, then its code predictor frame)
and comes back with its next step, so a batch waits until every out run has its step in, unless the run said
it is `away` (waiting for text, which may take long) and not yet `back`. Prefills and releases go at once.

Shapes: B rows, P prompt positions, C width, V codec vocabulary, G code groups.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.kv_cache import KVCache
from ..common.step_batcher import StepBatcher

from .model import Talker

Outputs = tuple[torch.Tensor, torch.Tensor]  # logits [1, V], last normed hidden [1, C]


@dataclass(frozen=True)
class Prefill:
    embeds: torch.Tensor  # [1, P, C]
    positions: torch.Tensor  # [3, 1, P]
    budget: int  # the most positions the run's slot holds: P + its frame budget


@dataclass(frozen=True)
class Step:
    slot: int
    codes: tuple[int, ...]  # the last frame's G codes
    text_id: int  # the trailing text token of this step (Thinker vocabulary)
    position: float  # its rope position: P + frame index + rope delta


@dataclass(frozen=True)
class Release:
    slot: int


@dataclass(frozen=True)
class Away:
    slot: int  # its run waits for text: batches do not wait for its step


@dataclass(frozen=True)
class Back:
    slot: int  # its run has its text: its step comes next


class TalkerServer:
    def __init__(self, model: Talker, table: torch.Tensor, max_batch: int, name: str):
        self.model, self.table = model, table  # table: the Thinker's embed_tokens [Vt, Ct]
        self.peak_batch = 0  # the most decode steps computed together (for tests and benchmarks)
        self._cache: KVCache | None = None
        self._out: set[int] = set()  # slots whose run got its outputs and has not called again (server thread)
        self._batcher = StepBatcher(self._run_batch, max_batch, name, ready=self._ready)

    def prefill(self, embeds: torch.Tensor, positions: torch.Tensor, budget: int) -> tuple[int, torch.Tensor,
                                                                                             torch.Tensor]:
        """A slot of `budget` positions holding the prompt -> (slot, logits [1, V], hidden [1, C])."""
        return self._batcher.call(Prefill(embeds, positions, budget))

    def step(self, slot: int, codes: tuple[int, ...], text_id: int, position: float) -> Outputs:
        """One decode step of the slot's run, computed with the steps other runs ask for now."""
        return self._batcher.call(Step(slot, codes, text_id, position))

    def release(self, slot: int) -> None:
        self._batcher.call(Release(slot))

    def away(self, slot: int) -> None:
        self._batcher.submit(Away(slot))

    def back(self, slot: int) -> None:
        self._batcher.submit(Back(slot))

    @property
    def live_slots(self) -> int:
        return 0 if self._cache is None else sum(b > 0 for b in self._cache.budgets)

    def _ready(self, waiting: list) -> bool:
        """Whether the waiting items make a complete batch (see the module docstring)."""
        if any(isinstance(i, (Prefill, Release)) for i in waiting):
            return True
        if sum(isinstance(i, Step) for i in waiting) >= self._batcher.max_batch:
            return True
        out = set(self._out)
        for item in waiting:
            if isinstance(item, (Step, Away)):
                out.discard(item.slot)
            elif isinstance(item, Back):
                out.add(item.slot)
        return not out

    def _run_batch(self, items: list) -> list:
        """Releases and away/back first (freed slots serve this batch's prefills), then one decode of every
        step, then each prefill; a failing item gets its exception as its result (recomputing items would
        advance the cache)."""
        results: list = [None] * len(items)
        for item in items:
            if isinstance(item, Release):
                self._cache.free(item.slot)
            if isinstance(item, (Release, Away, Step)):
                self._out.discard(item.slot)
            elif isinstance(item, Back):
                self._out.add(item.slot)
        steps = [i for i, item in enumerate(items) if isinstance(item, Step)]
        if steps:
            try:
                outputs = self._decode([items[i] for i in steps])
            except Exception as error:  # noqa: BLE001 - handed to each caller
                outputs = [error] * len(steps)
            for i, out in zip(steps, outputs):
                results[i] = out
                if not isinstance(out, Exception):
                    self._out.add(items[i].slot)
        for i, item in enumerate(items):
            if isinstance(item, Prefill):
                try:
                    results[i] = self._prefill(item)
                    self._out.add(results[i][0])
                except Exception as error:  # noqa: BLE001 - this run's input: the others go on
                    results[i] = error
        if self.live_slots == 0:
            self._cache = None
        return results

    def _prefill(self, p: Prefill) -> tuple[int, torch.Tensor, torch.Tensor]:
        if self._cache is None:
            self._cache = self.model.new_cache()  # grows as runs and frames come (kv_cache.py)
        slot, P = self._cache.add(p.budget), p.embeds.shape[1]
        try:
            logits, hidden = self.model.first_step(p.embeds, p.positions, self._cache, self._cache.rows([slot], P))
        except BaseException:
            self._cache.free(slot)
            raise
        return slot, logits, hidden

    def _decode(self, steps: list[Step]) -> list[Outputs]:
        """The steps' rows in slot order (consecutive slots read the cache as a view) -> each step's outputs."""
        order = sorted(range(len(steps)), key=lambda i: steps[i].slot)
        rows = [steps[i] for i in order]
        self.peak_batch = max(self.peak_batch, len(rows))
        model, device = self.model, self.table.device
        codes = torch.tensor([s.codes for s in rows], device=device)  # [B, G]
        text = model.text_projection(self.table[torch.tensor([s.text_id for s in rows], device=device)])  # [B, C]
        positions = torch.tensor([s.position for s in rows], dtype=torch.float32, device=device)  # [B]
        cache = self._cache
        logits, hidden = model.decode_step(model.frame_embedding(codes) + text, positions, cache,
                                           cache.rows([s.slot for s in rows], 1))
        outputs: list[Outputs] = [None] * len(steps)  # type: ignore[list-item]
        for b, i in enumerate(order):
            outputs[i] = (logits[b:b + 1], hidden[b:b + 1])
        return outputs
