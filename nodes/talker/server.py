"""The forward passes of one loaded Talker for every concurrent run (nodes/common/step_batcher.py). One server
thread owns a KVCache of many slots: a run takes a slot with its prefill (`prefill`), steps once per frame
(`step`: the steps waiting together are one decode over their rows, ragged lengths masked) and gives the slot
back (`release`). Only the server thread touches the cache (growth reallocates it); once no slot is live the
cache is dropped, so memory follows the live runs. Sampling stays with each run (node.py).

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


class TalkerServer:
    def __init__(self, model: Talker, table: torch.Tensor, max_batch: int, name: str):
        self.model, self.table = model, table  # table: the Thinker's embed_tokens [Vt, Ct]
        self.peak_batch = 0  # the most decode steps computed together (for tests and benchmarks)
        self._cache: KVCache | None = None
        self._batcher = StepBatcher(self._run_batch, max_batch, name)

    def prefill(self, embeds: torch.Tensor, positions: torch.Tensor, budget: int) -> tuple[int, torch.Tensor,
                                                                                             torch.Tensor]:
        """A slot of `budget` positions holding the prompt -> (slot, logits [1, V], hidden [1, C])."""
        return self._batcher.call(Prefill(embeds, positions, budget))

    def step(self, slot: int, codes: tuple[int, ...], text_id: int, position: float) -> Outputs:
        """One decode step of the slot's run, computed with the steps other runs ask for now."""
        return self._batcher.call(Step(slot, codes, text_id, position))

    def release(self, slot: int) -> None:
        self._batcher.call(Release(slot))

    def close(self) -> None:
        self._batcher.close()

    @property
    def live_slots(self) -> int:
        return 0 if self._cache is None else sum(b > 0 for b in self._cache.budgets)

    def _run_batch(self, items: list) -> list:
        """Releases first (their slots serve this batch's prefills), then one decode of every step, then each
        prefill; a failing item gets its exception as its result (recomputing items would advance the cache)."""
        results: list = [None] * len(items)
        for item in items:
            if isinstance(item, Release):
                self._cache.free(item.slot)
        steps = [i for i, item in enumerate(items) if isinstance(item, Step)]
        if steps:
            try:
                outputs = self._decode([items[i] for i in steps])
            except Exception as error:  # noqa: BLE001 - handed to each caller
                outputs = [error] * len(steps)
            for i, out in zip(steps, outputs):
                results[i] = out
        for i, item in enumerate(items):
            if isinstance(item, Prefill):
                try:
                    results[i] = self._prefill(item)
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
