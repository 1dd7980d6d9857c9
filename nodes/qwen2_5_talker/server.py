"""The forward passes of one loaded Qwen2.5-Omni Talker for every concurrent run (nodes/common/step_batcher.py):
one server thread owns a KVCache of many slots; a run takes a slot with its prefill, steps once per codec id
(the steps waiting together are one decode over their rows, ragged lengths masked) and gives the slot back.
Only the server thread touches the cache; once no slot is live it is dropped. Sampling stays with each run.

Shapes: B rows, T prompt positions, E Thinker width, V codec vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.kv_cache import KVCache
from ..common.step_batcher import StepBatcher

from .model import Talker


@dataclass(frozen=True)
class Prefill:
    inputs: torch.Tensor  # [1, T, E]
    positions: torch.Tensor  # [3, 1, T]
    budget: int  # the most positions the run's slot holds


@dataclass(frozen=True)
class Step:
    slot: int
    inputs: torch.Tensor  # [E] codec embedding of the last id + the trailing text state
    position: int


@dataclass(frozen=True)
class Release:
    slot: int


class TalkerServer:
    def __init__(self, model: Talker, max_batch: int, name: str):
        self.model = model
        self._cache: KVCache | None = None
        self._batcher = StepBatcher(self._run_batch, max_batch, name)

    @property
    def peak_batch(self) -> int:
        return self._batcher.peak_batch

    def prefill(self, inputs: torch.Tensor, positions: torch.Tensor, budget: int) -> tuple[int, torch.Tensor]:
        """-> (slot, logits [1, V])."""
        return self._batcher.call(Prefill(inputs, positions, budget))

    def step(self, slot: int, inputs: torch.Tensor, position: int) -> torch.Tensor:
        """-> logits [1, V] of the slot's next id, computed with the steps other runs ask for now."""
        return self._batcher.call(Step(slot, inputs, position))

    def release(self, slot: int) -> None:
        self._batcher.call(Release(slot))

    def _run_batch(self, items: list) -> list:
        """Releases first, then one decode of every step, then each prefill; a failing item gets its exception
        as its result (recomputing items would advance the cache)."""
        results: list = [None] * len(items)
        for item in items:
            if isinstance(item, Release):
                self._cache.free(item.slot)
        steps = [i for i, item in enumerate(items) if isinstance(item, Step)]
        if steps:
            try:
                logits = self._decode([items[i] for i in steps])
                for n, i in enumerate(steps):
                    results[i] = logits[n:n + 1]
            except Exception as error:  # noqa: BLE001 - handed to each caller
                for i in steps:
                    results[i] = error
        for i, item in enumerate(items):
            if isinstance(item, Prefill):
                try:
                    results[i] = self._prefill(item)
                except Exception as error:  # noqa: BLE001 - this run's input: the others go on
                    results[i] = error
        if self._cache is not None and not any(self._cache.budgets):
            self._cache = None
        return results

    def _prefill(self, p: Prefill) -> tuple[int, torch.Tensor]:
        if self._cache is None:
            self._cache = self.model.new_cache()
        slot = self._cache.add(p.budget)
        try:
            logits = self.model.first_logits(p.inputs, p.positions, self._cache,
                                             self._cache.rows([slot], p.inputs.shape[1]))
        except BaseException:
            self._cache.free(slot)
            raise
        return slot, logits

    def _decode(self, steps: list[Step]) -> torch.Tensor:
        """-> logits [B, V] in the order of `steps` (computed in slot order: consecutive slots are a view)."""
        order = sorted(range(len(steps)), key=lambda i: steps[i].slot)
        rows = [steps[i] for i in order]
        device = self.model.norm.weight.device
        inputs = torch.stack([s.inputs for s in rows])
        positions = torch.tensor([s.position for s in rows], dtype=torch.float32, device=device)
        logits = self.model.step_logits(inputs, positions, self._cache, self._cache.rows([s.slot for s in rows], 1))
        back = torch.empty_like(logits)
        back[torch.tensor(order, device=logits.device)] = logits
        return back
