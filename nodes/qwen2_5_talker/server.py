"""The forward passes of one loaded Qwen2.5-Omni Talker for every concurrent run (nodes/common/step_batcher.py,
lockstep, the Qwen3 Talker's rule): one server thread owns a KVCache of many slots; a run takes a slot with its
prefill (`prefill`), steps once per codec id (`step`: the steps waiting together are one decode over their rows,
ragged lengths masked) and gives the slot back (`release`). Only the server thread touches the cache; once no
slot is live it is dropped. Each row's id is chosen here with its run's own settings, repetition history and
generator (nodes/common/row_choice.py), so a run's ids are those it gets alone.

Lockstep: a run that got its id hands it on and calls again at once, so a batch waits for every such run unless
it said it is `away` (handing the id on, or waiting for its next Thinker state). A newcomer's prefill and a
release are urgent: computed between the others' steps, before their next batch.

Shapes: B rows, T prompt positions, E Thinker width, V codec vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.kv_cache import KVCache
from ..common.slot_server import Release, SlotServer
from ..common.step_batcher import StepBatcher
from ..common.row_choice import RowChoice, choose_rows

from .model import Talker


@dataclass(eq=False)
class Voice:
    """One run's place in the server (also its lockstep key); `slot` and `last` belong to the server thread."""

    choice: RowChoice  # the run's settings, generator and history (the prompt's filler ids first)
    slot: int = -1
    last: int = -1  # the id chosen last: its embedding starts the next step's input


@dataclass(frozen=True)
class Prefill:
    voice: Voice
    inputs: torch.Tensor  # [1, T, E]
    positions: torch.Tensor  # [3, 1, T]
    budget: int  # the most positions the run's slot holds


@dataclass(frozen=True)
class Step:
    voice: Voice
    text: torch.Tensor  # [E] the trailing text state of this step
    position: int


class TalkerServer(SlotServer):
    def __init__(self, model: Talker, suppress: torch.Tensor, max_batch: int, name: str):
        self.model, self.suppress = model, suppress  # suppress [V]: True for ids never chosen
        self.peak_batch = 0  # the most decode steps computed together (for tests and benchmarks)
        self._cache: KVCache | None = None
        self._batcher = StepBatcher(self._run_batch, max_batch, name, lockstep=True)

    def prefill(self, voice: Voice, inputs: torch.Tensor, positions: torch.Tensor, budget: int) -> int:
        """A slot of `budget` positions holding the prompt -> the first id."""
        return self._batcher.call(Prefill(voice, inputs, positions, budget), voice, urgent=True)

    def step(self, voice: Voice, text: torch.Tensor, position: int) -> int:
        """The run's next id (after its last one, with `text` [E]), computed with the steps other runs ask for now."""
        return self._batcher.call(Step(voice, text, position), voice)

    def _run_batch(self, items: list) -> list:
        """Releases first (freed slots serve this batch's prefills), then one decode of every step, each
        prefill, and the id of every row; a failing item gets its exception as its result (recomputing items
        would advance the cache)."""
        results: list = [None] * len(items)
        for item in items:
            if isinstance(item, Release) and item.voice.slot >= 0:
                self._cache.free(item.voice.slot)
                item.voice.slot = -1
        rows: list[tuple[int, torch.Tensor]] = []  # (item index, logits [1, V])
        steps = [i for i, item in enumerate(items) if isinstance(item, Step)]
        if steps:
            try:
                rows += list(zip(steps, self._decode([items[i] for i in steps])))
            except Exception as error:  # noqa: BLE001 - handed to each caller
                for i in steps:
                    results[i] = error
        for i, item in enumerate(items):
            if isinstance(item, Prefill):
                try:
                    rows.append((i, self._prefill(item)))
                except Exception as error:  # noqa: BLE001 - this run's input: the others go on
                    results[i] = error
        if rows:
            voices = [items[i].voice for i, _ in rows]
            try:
                ids = choose_rows(torch.cat([logits for _, logits in rows]), [v.choice for v in voices],
                                  self.suppress)
            except Exception as error:  # noqa: BLE001 - handed to each caller of these rows
                ids = [error] * len(rows)
            for (i, _), voice, code in zip(rows, voices, ids):
                voice.last, results[i] = code, code
        if self.live_slots == 0:
            self._cache = None
        return results

    def _prefill(self, p: Prefill) -> torch.Tensor:
        if self._cache is None:
            self._cache = self.model.new_cache()
        slot = self._cache.add(p.budget)
        try:
            logits = self.model.first_logits(p.inputs, p.positions, self._cache,
                                             self._cache.rows([slot], p.inputs.shape[1]))
        except BaseException:
            self._cache.free(slot)
            raise
        p.voice.slot = slot
        return logits

    def _decode(self, steps: list[Step]) -> list[torch.Tensor]:
        """The steps' rows in slot order (consecutive slots read the cache as a view) -> each step's logits
        [1, V]: the input of a row is its last id's codec embedding plus its text state."""
        order = sorted(range(len(steps)), key=lambda i: steps[i].voice.slot)
        rows = [steps[i] for i in order]
        self.peak_batch = max(self.peak_batch, len(rows))
        model = self.model
        weight = model.embed_tokens.weight
        last = torch.tensor([s.voice.last for s in rows], device=weight.device)
        inputs = model.embed_tokens(last) + torch.stack([s.text.to(weight.device, weight.dtype) for s in rows])
        positions = torch.tensor([s.position for s in rows], dtype=torch.float32, device=weight.device)
        logits = model.step_logits(inputs, positions, self._cache, self._cache.rows([s.voice.slot for s in rows], 1))
        outputs: list = [None] * len(steps)
        for b, i in enumerate(order):
            outputs[i] = logits[b:b + 1]
        return outputs
