"""Choosing the next id of each row of one batched decode step, each row with its own run's settings, generator
and repetition history (as transformers: suppressed ids, then the repetition penalty, also when greedy, then
greedy or temperature/top-k/top-p), so a row's id depends on its own run only.

Shapes: B rows, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .decode_buffers import TokenHistory
from .sampling import SamplingParams, apply_repetition_penalty, sample_rows


@dataclass(eq=False)
class RowChoice:
    """One run's way of choosing its ids, and the ids the penalty sees (a prefix, then those chosen so far)."""

    params: SamplingParams  # without repetition penalty: `penalty` is applied before, also when greedy
    generator: torch.Generator | None
    penalty: float
    history: TokenHistory


def choose_rows(logits: torch.Tensor, choices: list[RowChoice], suppress: torch.Tensor) -> list[int]:
    """logits [B, V], suppress [V] (True: never chosen) -> the id of each row (one host read for the batch);
    each row's history grows by its id."""
    x = logits.float().masked_fill(suppress, float("-inf"))
    for b, c in enumerate(choices):
        if c.penalty != 1.0 and c.history.length:
            x[b:b + 1] = apply_repetition_penalty(x[b:b + 1], c.history.view(), c.penalty)
    ids = sample_rows(x, [c.params for c in choices], [c.generator for c in choices], [None] * len(choices))
    for b, c in enumerate(choices):
        c.history.append(ids[b])
    return ids.tolist()
