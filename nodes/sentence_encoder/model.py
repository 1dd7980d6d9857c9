"""A BERT encoder (post-norm layers of bidirectional attention and a GELU MLP), as sentence-transformers'
MiniLM models use it; `from_hf_config` reads the folder's config.json.

Shapes: B sentences, T tokens, C width, H heads, D head_dim (C / H).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..common.linear import Linear


@dataclass(frozen=True)
class BertArgs:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    hidden: int  # MLP width
    max_positions: int
    type_vocab_size: int
    eps: float

    @classmethod
    def from_hf_config(cls, c: dict[str, Any]) -> BertArgs:
        if c.get("hidden_act", "gelu") != "gelu" or c.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT models with GELU and absolute position embeddings are supported")
        return cls(vocab_size=c["vocab_size"], dim=c["hidden_size"], n_layers=c["num_hidden_layers"],
                   n_heads=c["num_attention_heads"], hidden=c["intermediate_size"],
                   max_positions=c["max_position_embeddings"], type_vocab_size=c.get("type_vocab_size", 2),
                   eps=c.get("layer_norm_eps", 1e-12))


class BertLayer(nn.Module):
    def __init__(self, a: BertArgs):
        super().__init__()
        self.n_heads = a.n_heads
        self.wqkv = Linear(a.dim, 3 * a.dim, bias=True)
        self.wo = Linear(a.dim, a.dim, bias=True)
        self.attn_norm = nn.LayerNorm(a.dim, a.eps)
        self.up = Linear(a.dim, a.hidden, bias=True)
        self.down = Linear(a.hidden, a.dim, bias=True)
        self.mlp_norm = nn.LayerNorm(a.dim, a.eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, C], mask [B, 1, 1, T] (True = a real token) -> [B, T, C]."""
        B, T, C = x.shape
        q, k, v = self.wqkv(x).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, H, T, D]
        x = self.attn_norm(x + self.wo(attn.transpose(1, 2).reshape(B, T, C)))
        return self.mlp_norm(x + self.down(F.gelu(self.up(x))))


class BertEncoder(nn.Module):
    def __init__(self, args: BertArgs):
        super().__init__()
        self.args = args
        self.word_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.position_embeddings = nn.Embedding(args.max_positions, args.dim)
        self.token_type_embeddings = nn.Embedding(args.type_vocab_size, args.dim)
        self.embed_norm = nn.LayerNorm(args.dim, args.eps)
        self.layers = nn.ModuleList(BertLayer(args) for _ in range(args.n_layers))

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ids, attention_mask [B, T] (1 = real token) -> token embeddings [B, T, C]."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        x = self.embed_norm(x)
        mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return x
