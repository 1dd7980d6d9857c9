"""Causal GQA self-attention with optional q/k RMSNorm, rotary positions and a KV cache that grows as it fills.

Shapes: B batch, T new tokens, L cached + new tokens, C model width, H query heads, K key/value heads,
D head_dim. q/k/v projections are fused into one matrix `wqkv` [C, (H + 2K) * D] at load time (weights are
stored [in, out], see linear.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear, to_in_out
from .rmsnorm import RMSNorm
from .rope import apply_rope


INITIAL_CAPACITY = 256  # positions a cache holds before it first grows


@dataclass
class KVCache:
    """Keys and values of one layer, [B, K, capacity, D] each, written in place; `length` positions are valid.

    The capacity starts at min(max_len, INITIAL_CAPACITY) and doubles when an append needs more (never past
    `max_len`), so memory follows what is generated, not the budget, and growth costs O(1) per position.
    """

    k: torch.Tensor
    v: torch.Tensor
    max_len: int  # the most positions this cache may ever hold
    length: int = 0

    @classmethod
    def allocate(cls, batch: int, n_kv_heads: int, max_len: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device | str) -> KVCache:
        shape = (batch, n_kv_heads, min(max_len, INITIAL_CAPACITY), head_dim)
        return cls(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device),
                   max_len)

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def reserve(self, end: int) -> None:
        """Make room for `end` positions (doubling the capacity, keeping the valid ones)."""
        if end <= self.capacity:
            return
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: {end} positions needed, at most {self.max_len} allowed")
        capacity = min(self.max_len, max(end, 2 * self.capacity))
        self.k, self.v = (_with_capacity(t, capacity, self.length) for t in (self.k, self.v))

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v [B, K, T, D] after the valid positions; return views of all valid keys/values [B, K, L, D]."""
        start, end = self.length, self.length + k.shape[2]
        self.reserve(end)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


def _with_capacity(t: torch.Tensor, capacity: int, valid: int) -> torch.Tensor:
    """A zeroed [B, K, capacity, D] buffer holding t's first `valid` positions."""
    out = t.new_zeros(t.shape[0], t.shape[1], capacity, t.shape[3])
    out[:, :, :valid] = t[:, :, :valid]
    return out


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

    def prefill(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        """T new tokens (causal among themselves, attending to everything cached before them). -> [B, T, C]"""
        B, T, _ = x.shape
        q, k, v = self._qkv(x, cos, sin)
        start = 0
        if cache is not None:
            start = cache.length
            k, v = cache.append(k, v)
        if start == 0:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:  # continuing a cached sequence: query i sees keys 0..start+i
            keep = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, enable_gqa=True)
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))

    def decode(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """One new token per row, x [B, 1, C], attending to the whole cache. -> [B, 1, C]"""
        B = x.shape[0]
        q, k, v = self._qkv(x, cos, sin)
        k, v = cache.append(k, v)
        out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # [B, H, 1, D]; no mask: sees all
        return self.wo(out.transpose(1, 2).reshape(B, 1, -1))
