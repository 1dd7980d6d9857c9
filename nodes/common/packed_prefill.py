"""A decoder layer's prefill (T > 1 positions per row) on the decode step's fused, oneDNN-packed matrices.

Where oneDNN multiplies a layer's matrices (float32 on CPU, matrices linear.py `for_decode_rows` packs), a
prefill of many positions runs faster on those packed copies than with MKL: measured on one core, the small
Thinker's wqkv [512, 1536] 0.83 -> 0.57 ms at 36 rows and 16.8 -> 14.4 ms at 1000 rows, wo [1024, 512]
0.44 -> 0.35 and 10.4 -> 9.5 ms (MKL packs the matrix again on every call). The layer then computes what
decoder.py's `decode` computes, with T positions per row: RMSNorm weights folded into the next matrix, the q/k
norms as one scale over all heads with the attention scale in the q norm weight (so attention runs with scale 1),
RoPE applied to q and k together. Shapes: B rows, T positions, C width, H query heads, K key/value heads, D
head_dim.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import causal_attention
from .kv_cache import KVCache, Rows
from .rmsnorm import norm_root
from .rope import apply_rope


def packed_prefill_layer(layer, fused: tuple, heads: tuple[int, int, int], width_eps: torch.Tensor,
                         head_eps: torch.Tensor, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                         cache: KVCache | None, index: int, rows: Rows | None) -> torch.Tensor:
    """x [B, T, C], cos/sin [B, T, D] -> the layer's output [B, T, C]; every position's keys and values go to the
    rows' cache slots (as DecoderLayer.forward). `fused`: the layer's entry of Decoder.prepare, `heads` (H, K, D),
    eps: sqrt(n * eps) for widths C and D."""
    wqkv, bias, w_qk, wo, mlp_norm, w_gate_up, w_down = fused
    H, K, D = heads
    B, T, C = x.shape
    flat = x.reshape(B * T, C)
    qkv = wqkv(flat).div_(norm_root(flat, width_eps))  # [B*T, (H + 2K) D]
    if bias is not None:
        qkv = qkv + bias
    qk = qkv[:, :(H + K) * D].view(B, T, H + K, D)
    if w_qk is not None:
        qk = (qk * w_qk).div_(norm_root(qk, head_eps))
    qk = apply_rope(qk, cos.unsqueeze(-2), sin.unsqueeze(-2))  # the same angles for every head
    q, k = qk[:, :, :H].transpose(1, 2), qk[:, :, H:].transpose(1, 2)  # [B, H or K, T, D]
    v = qkv[:, (H + K) * D:].view(B, T, K, D).transpose(1, 2)
    mask = None
    if cache is not None:
        k, v = cache.write(index, rows, k, v)
        mask = rows.mask
    attended = causal_attention(q, k, v, mask, scale=1.0)  # the scale is in q
    x = x + wo(attended.transpose(1, 2).reshape(B * T, H * D)).view(B, T, C)
    flat = x.view(B * T, C)
    if w_gate_up is None:  # MoE: its norm weight times sqrt(C), then the same division
        return x + layer.mlp((flat * mlp_norm).div_(norm_root(flat, width_eps))).view(B, T, C)
    gate, up = w_gate_up(flat).div_(norm_root(flat, width_eps)).chunk(2, -1)
    return x + w_down(F.silu(gate) * up).view(B, T, C)
