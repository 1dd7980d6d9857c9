"""The forward passes of one loaded Talker for every concurrent run (nodes/common/step_batcher.py, lockstep).
One server thread owns a KVCache of many slots: a run takes a slot with its prefill (`prefill`), steps once per
frame (`step`: the steps waiting together are one decode over their rows, ragged lengths masked) and gives the
slot back (`release`). Only the server thread touches the cache (growth reallocates it); once no slot is live
the cache is dropped, so memory follows the live runs. Code 0 is chosen here too, each row with its run's own
settings and generator (nodes/common/row_choice.py).

Fused with a code predictor loaded in the same process (`predictor`, set by Talker.fuse_loop), the server is
the one scheduler of the Talker <-> code predictor loop: each batch is the Talker decode of every run in step
(and the newcomers' prefills, one right-padded call) followed by one batched code predictor frame of the same rows, so both batches
hold every active run; a run's thread then only hands its frame on, reads its next text token and calls again.
Before the batch's results go out, `announce` (set by Talker.announce_loop_output) gets the (run id, frame
index) of every frame its steps computed, so a reader of the frames (Code2Wav) knows they are on their way (not
a prefill's first frame: its run may still wait for its second text token, and a first chunk goes alone anyway).
Unfused (the code predictor in another process), a step carries the codes that came back through the loop.

Lockstep: a run that got its frame calls again at once, so a batch waits for every such run unless it said it
is `away` (waiting for text, which may take long). Fused, a newcomer's prefill (with its first frame) joins the
next batch of the runs in step: a run in step only hands its frame on and reads its text before it calls again
(waiting for text, it is away), the newcomer's first frame is needed only once its second text token is known,
and one code predictor frame of every row costs less than two (and keeps the runs in phase for Code2Wav).
Unfused, the runs in step wait for their frames from the code predictor's node, so a prefill is urgent, as is
a release: computed between the others' frames, before their next batch.

Shapes: B rows, P prompt positions, C width, V codec vocabulary, G code groups.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.nn.utils.rnn import pad_sequence

from ..common.kv_cache import KVCache
from ..common.row_choice import RowChoice, choose_rows
from ..common.slot_server import Release, SlotServer
from ..common.step_batcher import StepBatcher

from .model import Talker

Predictor = Callable[[list], list[list[int]]]  # FrameItems of one batch -> each row's G codes


@dataclass(eq=False)
class Voice:
    """One run's place in the server (also its lockstep key); `slot` and `codes` belong to the server thread."""

    choice: RowChoice
    sampling: tuple | None = None  # fused: the code predictor's (SamplingParams, generator) for this run
    run_id: str = ""
    min_frames: int = 0  # the codes chosen before EOS may be
    slot: int = -1
    codes: tuple[int, ...] | None = None  # the run's last frame, when the server computed it
    frames: int = 0  # the frames the server computed for the run
    chosen: int = 0  # the codes 0 chosen for the run


@dataclass(frozen=True)
class Frame:
    code0: int
    hidden: torch.Tensor  # [1, C] the last normed hidden state
    codes: tuple[int, ...] | None  # fused: the frame's G codes (None when code 0 ends the reply)


@dataclass(frozen=True)
class Prefill:
    voice: Voice
    embeds: torch.Tensor  # [1, P, C]
    positions: torch.Tensor  # [3, 1, P]
    budget: int  # the most positions the run's slot holds: P + its frame budget


@dataclass(frozen=True)
class Step:
    voice: Voice
    text_id: int  # the trailing text token of this step (Thinker vocabulary)
    position: float  # its rope position: P + frame index + rope delta
    codes: tuple[int, ...] | None  # the last frame's G codes (None: the one the server computed)


@dataclass
class TalkerServer(SlotServer):
    model: Talker
    table: torch.Tensor  # the Thinker's embed_tokens [Vt, Ct]
    suppress: torch.Tensor  # [V] True for codes never chosen (control ids but EOS)
    eos: int
    max_batch: int
    name: str
    predictor: Predictor | None = None  # fused: one code predictor frame for the batch's rows
    announce: Callable[[list[tuple[str, int]]], None] | None = None  # fused: the frames computed, before they go
    peak_batch: int = 0  # the most decode steps computed together (for tests and benchmarks)
    _cache: KVCache | None = field(default=None, init=False)
    _batcher: StepBatcher = field(init=False)

    def __post_init__(self):
        self._batcher = StepBatcher(self._run_batch, self.max_batch, self.name, lockstep=True)

    def prefill(self, voice: Voice, embeds: torch.Tensor, positions: torch.Tensor, budget: int) -> Future:
        """Queue a slot of `budget` positions holding the prompt; -> the future of the first Frame (its code 0, and
        fused its codes). Fused, it joins the next batch of the runs in step (at once when none is busy), so its
        first frame is computed with theirs; unfused it is urgent (the runs in step wait for frames from another
        node). No batch waits for the run after it: the run may first wait for its text."""
        return self._batcher.submit(Prefill(voice, embeds, positions, budget), urgent=self.predictor is None)

    def step(self, voice: Voice, text_id: int, position: float, codes: tuple[int, ...] | None = None) -> Future:
        """Queue the run's next decode step (computed with the steps other runs ask for now); -> its Frame."""
        return self._batcher.submit(Step(voice, text_id, position, codes), voice)

    def _run_batch(self, items: list) -> list:
        """Releases first (freed slots serve this batch's prefills), then one decode of every step, each
        prefill, code 0 for every row, and (fused) one code predictor frame for the rows that go on. A failing
        item gets its exception as its result (recomputing items would advance the cache)."""
        results: list = [None] * len(items)
        for item in items:
            if isinstance(item, Release) and item.voice.slot >= 0:
                self._cache.free(item.voice.slot)
                item.voice.slot = -1
        rows: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (item index, logits [1, V], hidden [1, C])
        steps = [i for i, item in enumerate(items) if isinstance(item, Step)]
        if steps:
            try:
                rows += [(i, *out) for i, out in zip(steps, self._decode([items[i] for i in steps]))]
            except Exception as error:  # noqa: BLE001 - handed to each caller
                for i in steps:
                    results[i] = error
        prefills = [i for i, item in enumerate(items) if isinstance(item, Prefill)]
        together = self._prefill_together([items[i] for i in prefills]) if len(prefills) > 1 else None
        if together is not None:
            rows += [(i, *out) for i, out in zip(prefills, together)]
        else:
            for i in prefills:
                try:
                    rows.append((i, *self._prefill(items[i])))
                except Exception as error:  # noqa: BLE001 - this run's input: the others go on
                    results[i] = error
        if rows:
            try:
                self._frames(items, rows, results)
            except Exception as error:  # noqa: BLE001 - handed to each caller of these rows
                for i, _, _ in rows:
                    results[i] = error
        if self.live_slots == 0:
            self._cache = None
        return results

    def _frames(self, items: list, rows: list[tuple[int, torch.Tensor, torch.Tensor]], results: list) -> None:
        """Code 0 of every row, then (fused) the frame of every row that does not end its reply."""
        from ..qwen3.loop_handoff import FrameItem

        voices = [items[i].voice for i, _, _ in rows]
        logits = torch.cat([logits for _, logits, _ in rows])
        early = [r for r, v in enumerate(voices) if v.chosen < v.min_frames]  # EOS not yet allowed
        if early:
            logits[early, self.eos] = float("-inf")
        code0 = choose_rows(logits, [v.choice for v in voices], self.suppress)
        for v in voices:
            v.chosen += 1
        going = [r for r, code in enumerate(code0) if code != self.eos and self.predictor is not None]
        codes: dict[int, tuple[int, ...]] = {}
        if going:
            frames = self.predictor([FrameItem(rows[r][2][0], code0[r], *voices[r].sampling) for r in going])
            codes = {r: tuple(frame) for r, frame in zip(going, frames)}
        for r, (i, _, hidden) in enumerate(rows):
            voices[r].codes = codes.get(r)
            results[i] = Frame(code0[r], hidden, voices[r].codes)
        stepped = [r for r in codes if isinstance(items[rows[r][0]], Step)]  # a first frame waits for text
        if stepped and self.announce is not None:
            self.announce([(voices[r].run_id, voices[r].frames) for r in stepped])
        for r in codes:
            voices[r].frames += 1

    def _prefill(self, p: Prefill) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is None:
            self._cache = self.model.new_cache()  # grows as runs and frames come (kv_cache.py)
        slot, P = self._cache.add(p.budget), p.embeds.shape[1]
        try:
            logits, hidden = self.model.first_step(p.embeds, p.positions, self._cache, self._cache.rows([slot], P))
        except BaseException:
            self._cache.free(slot)
            raise
        p.voice.slot = slot
        return logits, hidden

    def _prefill_together(self, ps: list[Prefill]) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The prompts of newcomers in one batch, right-padded into one call (as the Thinker engine's prefills
        starting together) -> each one's (logits [1, V], hidden [1, C]); None if it fails (each is then
        prefilled alone, so only a bad input's own run gets its error)."""
        if self._cache is None:
            self._cache = self.model.new_cache()
        slots = [self._cache.add(p.budget) for p in ps]
        try:
            embeds = pad_sequence([p.embeds[0] for p in ps], batch_first=True)  # [B, P, C]
            positions = pad_sequence([p.positions[:, 0].T for p in ps], batch_first=True).permute(2, 0, 1)  # [3, B, P]
            rows = self._cache.rows(slots, [p.embeds.shape[1] for p in ps])
            logits, hidden = self.model.first_step(embeds, positions, self._cache, rows)
        except Exception:  # noqa: BLE001 - retried one by one
            for slot in slots:
                self._cache.free(slot)
            return None
        for p, slot in zip(ps, slots):
            p.voice.slot = slot
        return [(logits[b:b + 1], hidden[b:b + 1]) for b in range(len(ps))]

    def _decode(self, steps: list[Step]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The steps' rows in slot order (consecutive slots read the cache as a view) -> each step's
        (logits [1, V], hidden [1, C])."""
        order = sorted(range(len(steps)), key=lambda i: steps[i].voice.slot)
        rows = [steps[i] for i in order]
        self.peak_batch = max(self.peak_batch, len(rows))
        model, device = self.model, self.table.device
        codes = torch.tensor([s.voice.codes if s.codes is None else s.codes for s in rows], device=device)  # [B, G]
        text = model.text_projection(self.table[torch.tensor([s.text_id for s in rows], device=device)])  # [B, C]
        positions = torch.tensor([s.position for s in rows], dtype=torch.float32, device=device)  # [B]
        cache = self._cache
        logits, hidden = model.decode_step(model.frame_embedding(codes) + text, positions, cache,
                                           cache.rows([s.voice.slot for s in rows], 1))
        outputs: list = [None] * len(steps)
        for b, i in enumerate(order):
            outputs[i] = (logits[b:b + 1], hidden[b:b + 1])
        return outputs
