"""The vocabulary head of decode steps, one mechanism for every decoder model: `batch_head` (all logits; the
packed product of packed_head.py for several rows) and `best_head` (rows that read only their k best logits; the
screen of screened_head.py where one serves, else `batch_head`), as the engine calls them (engine.py).

Memory: the head's float32 [C, V] weight, and where a screen serves its float32 token rows [V, C] (the same
memory when the weight is a transposed view of [V, C], as text_llm's) and its packed bfloat16 copy; the packed
float32 copy is made on the first full head of several rows (none where every such step is screened).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .packed_head import PackedHead
from .screened_head import ScreenedHead, screen_serves


class DecodeHead:
    def __init__(self, weight: torch.Tensor):
        """weight [C, V] (linear.py layout, or a transposed view of [V, C])."""
        self.key = weight.data_ptr(), weight.shape, weight.stride()
        self.full = PackedHead(weight)
        self.screen = ScreenedHead(weight) if screen_serves(weight) else None

    def best(self, x: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
        logits = None if self.screen is None else self.screen(x, ks)
        return self.full(x) if logits is None else logits


class DecodeHeads:
    """Mixin for a Decoder model (before Decoder in its bases) whose `decode_head_weight()` is its head [C, V]:
    the decode head made by `prepare` (and again whenever that weight is replaced)."""

    _decode_head: DecodeHead | None = None

    def prepare(self) -> None:
        super().prepare()
        self._decode_head = DecodeHead(self.decode_head_weight())

    def decode_head(self) -> DecodeHead:
        weight = self.decode_head_weight()
        if self._decode_head is None or self._decode_head.key != (weight.data_ptr(), weight.shape, weight.stride()):
            self._decode_head = DecodeHead(weight)
        return self._decode_head

    def batch_head(self, x: torch.Tensor) -> torch.Tensor:
        """The head for a few rows (a decode batch), x [B, C] -> logits [B, V]."""
        return self.decode_head().full(x)

    def best_head(self, x: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
        """x [B, C] whose row b reads only its ks[b] best logits -> logits [B, V]: those exact, any other may be
        -inf (screened_head.py)."""
        return self.decode_head().best(x, ks)
