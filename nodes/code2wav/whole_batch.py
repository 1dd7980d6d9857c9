"""Concurrent runs' whole-utterance decodes (`mode: whole`) in one call: the waiting utterances, right-padded to
the longest, are one [B, G, T] decode, and each keeps the samples of its own frames. The model is causal (a
stream's chunks join into the whole decode), so padding after an utterance leaves its samples as they are alone.
On the CPU a whole decode is bound by its large convolutions, which cost more batched than one by one (`small`
checkpoint, one core: 4 utterances of 100 frames 4.0 s in one call, 2.1 s one by one), so there the waiting
utterances are decoded one per call.

Shapes: B utterances, G code groups, T frames (the longest), N samples.
"""
from __future__ import annotations

import torch

from ..common.step_batcher import StepBatcher
from .model import Code2Wav


class WholeBatcher:
    def __init__(self, model: Code2Wav, max_batch: int, name: str):
        self.model = model
        self.batcher = StepBatcher(self.decode_batch, max_batch, name)

    def decode(self, frames: list[list[int]]) -> torch.Tensor:
        """One utterance's frames [T][G] -> its waveform [N] float32 on the CPU, with the others waiting."""
        return self.batcher.call(frames)

    def decode_batch(self, utterances: list[list[list[int]]]) -> list[torch.Tensor]:
        if self.model.code_offset.device.type == "cpu":
            return [self.decode_padded([u])[0] for u in utterances]
        return self.decode_padded(utterances)

    def decode_padded(self, utterances: list[list[list[int]]]) -> list[torch.Tensor]:
        T = max(map(len, utterances))
        G = len(utterances[0][0])
        padded = [u + [[0] * G] * (T - len(u)) for u in utterances]
        codes = torch.tensor(padded, dtype=torch.long, device=self.model.code_offset.device).transpose(1, 2)
        samples = self.model(codes).float().cpu()  # [B, N]
        return [samples[b, :self.model.args.num_samples(len(u))].clone() for b, u in enumerate(utterances)]
