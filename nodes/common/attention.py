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


def last_positions(x: torch.Tensor, rows: Rows | None) -> torch.Tensor:
    """x [B, T, ...] -> each row's last new position [B, 1, ...] (its own count's, with right-padded rows)."""
    if rows is None or rows.counts is None:
        return x[:, -1:]
    last = torch.tensor(rows.counts, device=x.device) - 1
    return x[torch.arange(len(last), device=x.device), last][:, None]


QUERY_BLOCK = 64  # CPU prefill: queries per SDPA call while the causal triangle is most of the scores


def causal_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                     mask: torch.Tensor | None) -> torch.Tensor:
    """T > 1 new queries per row after L - T earlier keys: q [B, H, T, D], keys/values [B, K, L, D]; query i sees
    keys 0..L - T + i (`mask` [T, L] True = visible says the same, or is None when L == T) -> [B, H, T, D] (a
    transposed view of [B, T, H, D] memory, as SDPA's CPU output: `.transpose(1, 2).reshape` copies nothing).

    On CPU, while fewer than T keys came before (a prompt's first positions), the queries run in blocks of
    QUERY_BLOCK, each over the keys up to its last query: SDPA's CPU flash kernel computes whole tiles of up to
    256 queries, so one causal call computes up to ~1.5x the visible scores (measured at 512 and 256 new
    positions: 0.7x and 0.8x the time of one call; with more earlier keys than new ones the triangle is a small
    share and blocks gain nothing). Elsewhere one SDPA call (the CUDA kernels skip masked tiles themselves)."""
    T, L = q.shape[2], keys.shape[2]
    before = L - T
    if q.device.type != "cpu" or before >= T or T <= QUERY_BLOCK:
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=mask is None,
                                              enable_gqa=True)
    visible = torch.ones(T, L, dtype=torch.bool, device=q.device).tril(before)
    blocks = []
    for first in range(0, T, QUERY_BLOCK):
        last = min(T, first + QUERY_BLOCK)
        seen = before + last  # keys this block's last query sees
        block_mask = None if first == 0 and before == 0 else visible[first:last, :seen]
        blocks.append(F.scaled_dot_product_attention(q[:, :, first:last], keys[:, :, :seen], values[:, :, :seen],
                                                     attn_mask=block_mask, is_causal=block_mask is None,
                                                     enable_gqa=True).transpose(1, 2))
    return torch.cat(blocks, dim=1).transpose(1, 2)


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

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, last_only: bool = False,
             rows: Rows | None = None):
        """x [B, T, C] -> q [B, H, T, D], k, v [B, K, T, D] with norms and rotary applied (as transposed views).
        `last_only`: q of each row's last position only ([B, H, 1, D]; its product reads only the q columns)."""
        B, T, _ = x.shape
        H, K, D = self.n_heads, self.n_kv_heads, self.head_dim
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # [B, T, 1, D]: the same angles for every head
        if last_only:
            w, bias = self.wqkv.weight, self.wqkv.bias
            q, kv = last_positions(x, rows) @ w[:, :H * D], x @ w[:, H * D:]
            if bias is not None:
                q, kv = q + bias[:H * D], kv + bias[H * D:]
            k, v = kv.split([K * D, K * D], dim=-1)
            q_cos, q_sin = last_positions(cos, rows), last_positions(sin, rows)
        else:
            q, k, v = self.wqkv(x).split([H * D, K * D, K * D], dim=-1)
            q_cos, q_sin = cos, sin
        q, k, v = q.view(B, -1, H, D), k.view(B, T, K, D), v.view(B, T, K, D)
        if self.q_norm is not None:  # the norms also make q and k contiguous
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, q_cos, q_sin), apply_rope(k, cos, sin)  # rotate in [B, T, heads, D] layout
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None,
                layer: int = 0, rows: Rows | None = None, last_only: bool = False) -> torch.Tensor:
        """T new tokens per row, x [B, T, C]: causal among themselves, seeing what the rows' cache slots hold
        before them (no cache: a whole sequence). -> [B, T, C]; `last_only`: every position's keys and values
        go to the cache, the output is the last position's only ([B, 1, C])."""
        B, T, _ = x.shape
        q, k, v = self._qkv(x, cos, sin, last_only, rows)
        mask = None
        if cache is not None:
            k, v = cache.write(layer, rows, k, v)
            mask = rows.mask
        if last_only:  # the last query sees every key (of its own row, with right-padded rows)
            visible = None if rows is None or rows.counts is None else (
                torch.arange(T, device=x.device) < torch.tensor(rows.counts, device=x.device)[:, None])[:, None, None]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, enable_gqa=True)
        elif T > 1:
            out = causal_attention(q, k, v, mask)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        return self.wo(out.transpose(1, 2).reshape(B, q.shape[2], -1))
