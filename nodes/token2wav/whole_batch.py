"""Concurrent runs' whole utterances (`mode: whole`) solved together: the utterances waiting together are one
batch, each with its own noise and voice (the speaker's ECAPA encoding and cond), solved as one ODE where that
pays (row_solve.py); a row's mel is the one it gets alone. BigVGAN is not causal (an utterance's last samples
see its end), so each mel is vocoded on its own. Where the utterances are not solved as one ODE (the CPU,
`together=False`), a batch is one utterance, so each is handed on as soon as it is solved, not when the last
of its batch is.

Shapes: M mel bins, n mel frames, S samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.step_batcher import StepBatcher

from .bigvgan import BigVGAN
from .dit import DiT
from .row_solve import solve_rows


@dataclass(frozen=True)
class Utterance:
    ids: list[int]  # codec ids
    noise: torch.Tensor  # [1, repeats * len(ids), M] the ODE's initial state
    voice: tuple[torch.Tensor, ...]  # DiT.voice, guided


class WholeBatcher:
    def __init__(self, dit: DiT, vocoder: BigVGAN, num_steps: int, max_batch: int, name: str,
                 together: bool | None = None):
        self.dit, self.vocoder, self.num_steps = dit, vocoder, num_steps
        self.together = dit.freqs.device.type != "cpu" if together is None else together  # one padded ODE
        self.batcher = StepBatcher(self.decode_batch, max_batch if self.together else 1, name)

    def decode(self, utterance: Utterance) -> torch.Tensor:
        """The utterance's waveform [S] float32 on the CPU, solved with the others waiting."""
        return self.batcher.call(utterance)

    def decode_batch(self, utterances: list[Utterance]) -> list[torch.Tensor]:
        return [self.vocoder(mel[None])[0].cpu() for mel in self.mels(utterances)]

    def mels(self, utterances: list[Utterance]) -> list[torch.Tensor]:
        """-> each utterance's log-mel [M, n]."""
        device = self.dit.freqs.device
        rows = [(u.noise, self.dit.conditioning(torch.tensor([u.ids], device=device), u.voice)) for u in utterances]
        return solve_rows(self.dit, rows, self.num_steps, self.together)
