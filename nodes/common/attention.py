"""Causal GQA self-attention with optional q/k RMSNorm and rotary positions, over a KVCache (kv_cache.py).

Shapes: B batch, T new tokens, L cached + new tokens, C model width, H query heads, K key/value heads,
D head_dim. q/k/v projections are fused into one matrix `wqkv` [C, (H + 2K) * D] at load time (weights are
shaped [in, out], see linear.py for their memory layout).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kv_cache import KVCache, Rows
from .linear import Linear, to_in_out
from .rmsnorm import RMSNorm
from .rope import apply_rope


def decode_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     mask: torch.Tensor | None) -> torch.Tensor:
    """One new query per row: q [B, H, D] already times D**-0.5 (the decoder folds it into a weight), keys/values
    [B, K, L, D], mask [B, 1, 1, L] (True = visible) or None -> [B, H * D]. Query head h reads key/value head h // (H / K). Two batched products over the heads of each
    key/value group: at few rows and short, ragged rows this is faster than SDPA (measured on CPU, batch 8)."""
    B, H, D = q.shape
    K = keys.shape[1]
    scores = q.view(B, K, H // K, D) @ keys.transpose(-1, -2)  # [B, K, H/K, L]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return (scores.softmax(-1) @ values).view(B, H * D)


def fuse_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Checkpoint q/k/v projection weights [out, C] -> `Attention.wqkv.weight` [C, (H + 2K) * D].
    Biases ([out]) are concatenated the same way."""
    fused = torch.cat([q, k, v], dim=0)
    return fused if fused.dim() == 1 else to_in_out(fused)


class Attention(nn.Module):
    """Causal self-attention: fused qkv projection, per-head q/k RMSNorm, rotary, GQA, output projection."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, eps: float = 1e-6,
                 qk_norm: bool = True, qkv_bias: bool = False):
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"{n_heads} query heads are not a multiple of {n_kv_heads} key/value heads")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.wqkv = Linear(dim, (n_heads + 2 * n_kv_heads) * head_dim, bias=qkv_bias)
        self.wo = Linear(n_heads * head_dim, dim)
        self.q_norm = RMSNorm(head_dim, eps) if qk_norm else None
        self.k_norm = RMSNorm(head_dim, eps) if qk_norm else None

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """x [B, T, C] -> q [B, H, T, D], k, v [B, K, T, D] with norms and rotary applied (as transposed views)."""
        B, T, _ = x.shape
        H, K, D = self.n_heads, self.n_kv_heads, self.head_dim
        q, k, v = self.wqkv(x).split([H * D, K * D, K * D], dim=-1)
        q, k, v = q.view(B, T, H, D), k.view(B, T, K, D), v.view(B, T, K, D)
        if self.q_norm is not None:  # the norms also make q and k contiguous
            q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # [B, T, 1, D]: the same angles for every head
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # rotate in [B, T, heads, D] layout
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0, rows: Rows | None = None) -> torch.Tensor:
        """T new tokens per row, x [B, T, C]: causal among themselves, seeing what the rows' cache slots hold
        before them (no cache: a whole sequence). -> [B, T, C]"""
        B, T, _ = x.shape
        q, k, v = self._qkv(x, cos, sin)
        mask = None
        if cache is not None:
            k, v = cache.write(layer, rows, k, v)
            mask = rows.mask
        causal = mask is None and T > 1
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=True)
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))
