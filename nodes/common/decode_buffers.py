"""Per-step decode state sized by what is generated, not by the budget: a huge `max_new_tokens` or
`max_frames` on a short reply allocates nothing up front (the KV cache grows the same way, see attention.py).

Shapes: D head_dim, N positions computed so far.
"""
from __future__ import annotations

from typing import Callable

import torch

CHUNK = 256  # decode steps per block of rotary angles; initial capacity of a history


class RopeChunks:
    """cos/sin [1, 1, D] of decode step s, computed CHUNK steps at a time by `compute(first, count)` -> [n, D]."""

    def __init__(self, compute: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]], steps: int):
        self.compute, self.steps = compute, steps
        self.first, self.cos, self.sin = 0, None, None

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cos is None or not self.first <= step < self.first + self.cos.shape[0]:
            self.first = step - step % CHUNK
            self.cos, self.sin = self.compute(self.first, min(CHUNK, self.steps - self.first))
        i = step - self.first
        return self.cos[i:i + 1][None], self.sin[i:i + 1][None]


class TokenHistory:
    """Token ids so far (a prompt's, then each chosen one), kept as [1, N] with doubling capacity."""

    def __init__(self, device: torch.device | str, prefix: torch.Tensor | None = None):
        n = 0 if prefix is None else prefix.numel()
        self.ids = torch.empty(1, max(CHUNK, n), dtype=torch.long, device=device)
        if prefix is not None:
            self.ids[0, :n] = prefix.reshape(-1)
        self.length = n

    def append(self, token: torch.Tensor) -> None:
        """token: a one-element tensor."""
        if self.length == self.ids.shape[1]:
            grown = self.ids.new_empty(1, 2 * self.length)
            grown[:, :self.length] = self.ids
            self.ids = grown
        self.ids[0, self.length] = token.reshape(-1)[0]
        self.length += 1

    def view(self) -> torch.Tensor:
        """[1, N] ids so far (a view: valid until the next append)."""
        return self.ids[:, :self.length]
