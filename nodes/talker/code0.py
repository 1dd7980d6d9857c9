"""Choosing code 0 of each frame for the rows of one Talker batch, each with its own run's settings, generator
and repetition history (as transformers: suppressed control ids, then the repetition penalty, also when
greedy, then greedy or temperature/top-k/top-p), so a row's code depends on its own run only.

Shapes: B rows, V codec vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..common.decode_buffers import TokenHistory
from ..common.sampling import SamplingParams, apply_repetition_penalty, sample_rows


@dataclass(eq=False)
class Code0Choice:
    """One run's way of choosing code 0, and the codes it chose so far."""

    params: SamplingParams  # without repetition penalty: `penalty` is applied before, also when greedy
    generator: torch.Generator | None
    penalty: float
    history: TokenHistory = field(init=False)
    device: str = "cpu"

    def __post_init__(self):
        self.history = TokenHistory(self.device)


def choose_code0(logits: torch.Tensor, choices: list[Code0Choice], suppress: torch.Tensor) -> list[int]:
    """logits [B, V] -> code 0 of each row (one host read for the batch); each row's history grows by its code."""
    x = logits.float().masked_fill(suppress, float("-inf"))
    for b, c in enumerate(choices):
        if c.penalty != 1.0 and c.history.length:
            x[b:b + 1] = apply_repetition_penalty(x[b:b + 1], c.history.view(), c.penalty)
    codes = sample_rows(x, [c.params for c in choices], [c.generator for c in choices], [None] * len(choices))
    for b, c in enumerate(choices):
        c.history.append(codes[b])
    return codes.tolist()
