"""Per-step decode state sized by what is generated, not by the budget: a huge `max_new_tokens` or
`max_frames` on a short reply allocates nothing up front (the KV cache grows the same way, see kv_cache.py).

Shapes: N tokens so far.
"""
from __future__ import annotations

import torch

CHUNK = 256  # initial capacity of a history


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
