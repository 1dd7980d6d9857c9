"""Concurrent runs' whole utterances (`mode: whole`) solved together: the utterances waiting together are one
ODE over a [B, N, M] state right-padded to the longest, each row with its own noise and voice (the speaker's
ECAPA encoding and cond, guided rows after the conditional ones); the DiT's attention hides each row's padding
from its frames (dit.padding_mask), and every other DiT step is per frame, so a row's mel is the one it gets
alone. BigVGAN is not causal (an utterance's last samples see its end), so each mel is vocoded on its own.
On the CPU the DiT is bound by its products' arithmetic, not by reading its weights, so a batch gains little and
its padding costs (`small25`, one core, 4 utterances of 48 codes: 1.04-1.18x one by one; of 40-64 codes:
0.80-0.99x): there the waiting utterances are solved one per call, as Code2Wav does (`together`).

Shapes: B utterances, N mel frames (the longest), M mel bins, C conditioning width.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..common.step_batcher import StepBatcher

from .bigvgan import BigVGAN
from .dit import DiT
from .sampler import solve


@dataclass(frozen=True)
class Utterance:
    ids: list[int]  # codec ids
    noise: torch.Tensor  # [1, repeats * len(ids), M] the ODE's initial state
    voice: tuple[torch.Tensor, ...]  # DiT.voice, guided


class WholeBatcher:
    def __init__(self, dit: DiT, vocoder: BigVGAN, num_steps: int, max_batch: int, name: str):
        self.dit, self.vocoder, self.num_steps = dit, vocoder, num_steps
        self.together = dit.freqs.device.type != "cpu"  # one padded ODE for the waiting utterances
        self.batcher = StepBatcher(self.decode_batch, max_batch, name)

    def decode(self, utterance: Utterance) -> torch.Tensor:
        """The utterance's waveform [S] float32 on the CPU, solved with the others waiting."""
        return self.batcher.call(utterance)

    def decode_batch(self, utterances: list[Utterance]) -> list[torch.Tensor]:
        mels = self.mels(utterances) if self.together else [self.mels([u])[0] for u in utterances]
        return [self.vocoder(mel[None])[0].cpu() for mel in mels]

    def mels(self, utterances: list[Utterance]) -> list[torch.Tensor]:
        """-> each utterance's log-mel [M, n] (one alone is solved unpadded, as before batching)."""
        device = self.dit.freqs.device
        sizes = [u.noise.shape[1] for u in utterances]
        N = max(sizes)
        noise = torch.cat([F.pad(u.noise, (0, 0, 0, N - n)) for u, n in zip(utterances, sizes)]).to(device)
        rows = [self.dit.conditioning(torch.tensor([u.ids], device=device), u.voice) for u in utterances]  # [2, n, C]
        conditioning = torch.cat([F.pad(c[g:g + 1], (0, 0, 0, N - n)) for g in (0, 1)
                                  for c, n in zip(rows, sizes)])  # [2B, N, C]: conditional rows, then unguided
        lengths = None if len(utterances) == 1 else torch.tensor(sizes, device=device)
        mel = solve(self.dit, noise, conditioning, self.num_steps, lengths=lengths)  # [B, M, N]
        return [mel[b, :, :n] for b, n in enumerate(sizes)]
