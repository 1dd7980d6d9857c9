"""A Llama-style causal LM on the common decoder (nodes/common/decoder.py: dense SwiGLU, no q/k-norm, plain
RoPE): token embeddings, the decoder, and an output head (tied to the embeddings unless the file has its own).

Shapes: B sequences, T tokens this call, C hidden, V vocabulary.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.decode_head import DecodeHeads
from ..common.decoder import Decoder
from ..common.decoder_args import DecoderArgs
from ..common.kv_cache import KVCache, Rows


class TextLM(DecodeHeads, Decoder):
    def __init__(self, args: DecoderArgs, tied: bool = True):
        super().__init__(args, mrope=False, qk_norm=False)
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dim)
        self.lm_head = None if tied else nn.Parameter(torch.empty(args.vocab_size, args.dim))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden [..., C] -> logits [..., V]."""
        return F.linear(x, self.embed_tokens.weight if self.lm_head is None else self.lm_head)

    def decode_head_weight(self) -> torch.Tensor:
        """The head as [C, V], a transposed view of its [V, C] memory (decode_head.py)."""
        return (self.embed_tokens.weight if self.lm_head is None else self.lm_head).t()

    def hidden_tokens(self, ids: torch.Tensor, start: int = 0, cache: KVCache | None = None,
                      rows: Rows | None = None) -> torch.Tensor:
        """Prefill: ids [B, T] at positions start.. -> final-normed hidden [B, T, C] (no cache: a whole sequence)."""
        positions = torch.arange(start, start + ids.shape[1], device=ids.device).expand(ids.shape[0], -1)
        cos, sin = self.cos_sin(positions, self.norm.weight.dtype)
        return self.prefill(self.embed_tokens(ids), cos, sin, cache, rows)

    def forward_tokens(self, ids: torch.Tensor, start: int = 0, cache: KVCache | None = None,
                       rows: Rows | None = None) -> torch.Tensor:
        """Prefill: ids [B, T] at positions start.. -> logits [B, T, V]."""
        return self.head(self.hidden_tokens(ids, start, cache, rows))

    def decode_hidden(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                      rows: Rows) -> torch.Tensor:
        """tokens [B], positions [B] -> final-normed hidden [B, C]."""
        return self.norm(self.decode(self.embed_tokens(tokens), self.rotations(positions), cache, rows))

    def decode_step(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache, rows: Rows) -> torch.Tensor:
        """tokens [B], positions [B] -> logits [B, V]."""
        return self.head(self.decode_hidden(tokens, positions, cache, rows))
