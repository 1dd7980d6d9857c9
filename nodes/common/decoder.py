"""One decoder for the Thinker, the Talker and the code predictor: pre-norm layers of q/k-norm GQA attention and
a dense SwiGLU or routed-expert MLP (optionally with a shared expert), a final norm, rotary angles (plain or
interleaved MRoPE), and batched `prefill` / `decode` over a KVCache that holds many sequences (kv_cache.py).

Shapes: B rows (sequences), T tokens this call, C width, H query heads, K key/value heads, D head_dim.
`decode` runs one token per row with few tensor ops (per step it runs once per layer, so per-op overhead
counts): RMSNorm weights folded into the next matrix (rmsnorm(x) @ W == (x @ (sqrt(C) * w * W)) /
sqrt(sum(x^2) + C * eps)), q/k norms as one scale over all heads, the attention scale inside the q norm weight,
RoPE as one [D, D] product per row; decode batches on CPU multiply by oneDNN-packed copies (linear.py
`for_decode_rows`).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention, decode_attention, last_positions
from .decoder_args import DecoderArgs
from .kv_cache import KVCache, Rows
from .linear import for_decode_rows, for_device
from .moe import MoE, SwiGLU
from .rmsnorm import RMSNorm
from .rope import apply_rope, inv_freq, mrope_axis_map, mrope_cos_sin, rope_cos_sin

AfterLayer = Callable[[int, torch.Tensor], torch.Tensor]  # (layer index, its output) -> what the next layer reads


class DecoderLayer(nn.Module):
    def __init__(self, a: DecoderArgs, sparse: bool, qk_norm: bool = True):
        super().__init__()
        self.attn_norm = RMSNorm(a.dim, a.rms_eps)
        self.attn = Attention(a.dim, a.n_heads, a.n_kv_heads, a.head_dim, a.rms_eps, qk_norm=qk_norm,
                              qkv_bias=a.attention_bias)
        self.mlp_norm = RMSNorm(a.dim, a.rms_eps)
        self.mlp = (MoE(a.dim, a.n_experts, a.top_k, a.moe_hidden, a.norm_topk_prob, a.shared_hidden) if sparse
                    else SwiGLU(a.dim, a.dense_hidden))

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer: int = 0, rows: Rows | None = None,
                last_only: bool = False):
        """x [B, T, C] -> [B, T, C]; `last_only`: the cache gets every position, the output is the last's [B, 1, C]
        (each row's own last with right-padded rows)."""
        attended = self.attn(self.attn_norm(x), cos, sin, cache, layer, rows, last_only)
        x = (last_positions(x, rows) if last_only else x) + attended
        return x + self.mlp(self.mlp_norm(x))


class Decoder(nn.Module):
    """Layers, final norm and rotary tables; models subclass it and add their embeddings and heads.
    `qk_norm=False`: attention without q/k RMSNorm (Llama-style models)."""

    def __init__(self, args: DecoderArgs, mrope: bool = True, qk_norm: bool = True):
        super().__init__()
        self.decoder_args = args
        self.layers = nn.ModuleList(DecoderLayer(args, s, qk_norm) for s in args.sparse)
        self.norm = RMSNorm(args.dim, args.rms_eps)
        self.register_buffer("freqs", inv_freq(args.head_dim, args.rope_theta), persistent=False)
        self.register_buffer("axis_map", mrope_axis_map(args.head_dim, args.mrope_section) if mrope else None,
                             persistent=False)
        self._fused = None

    def new_cache(self) -> KVCache:
        a, w = self.decoder_args, self.norm.weight
        return KVCache(len(self.layers), a.n_kv_heads, a.head_dim, w.dtype, w.device)

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [3, ..., S] (MRoPE) or [..., S] -> cos, sin [..., S, D]."""
        if self.axis_map is None:
            return rope_cos_sin(positions, self.freqs, dtype)
        return mrope_cos_sin(positions, self.freqs, self.axis_map, dtype)

    def rotations(self, positions: torch.Tensor) -> torch.Tensor:
        """positions [B] (the same on every MRoPE axis) -> [B, D, D]: x @ R[b] == x * cos + rotate_half(x) * sin."""
        cos, sin = rope_cos_sin(positions, self.freqs, self.norm.weight.dtype)  # [B, D]
        return apply_rope(self._fusion()[1], cos[:, None], sin[:, None])

    def prefill(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None,
                rows: Rows | None = None, after_layer: AfterLayer | None = None,
                last_only: bool = False) -> torch.Tensor:
        """x [B, T, C], cos/sin [B, T, D] -> final-normed hidden [B, T, C]. With a cache: B = 1, or prompts
        starting together in empty slots, right-padded to T (kv_cache.py `rows` with counts; a padded position's
        output is not meaningful).
        `last_only` (what a generation step needs): -> [B, 1, C] of the last position; the last layer still
        writes every position's keys and values, but its query, attention, MLP and the final norm run for the
        last position only (that saves nearly one of the small Thinker's eight layers, at 36 or 1000 positions)."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, cache, i, rows, last_only and i == last)
            if after_layer is not None:
                x = after_layer(i, x)
        if cache is not None:
            cache.commit(rows)
        return self.norm(x)

    def decode(self, x: torch.Tensor, rot: torch.Tensor, cache: KVCache, rows: Rows,
               after_layer: AfterLayer | None = None, cache_only: bool = False) -> torch.Tensor:
        """One token per row x [B, C], rot [B or 1, D, D] of its position -> the last layer's output [B, C]
        (before the final norm). `cache_only`: only fill the cache (the last MLP is skipped; the output is not
        meaningful)."""
        a = self.decoder_args
        H, K, D = a.n_heads, a.n_kv_heads, a.head_dim
        B = x.shape[0]
        fused, _, width_eps, head_eps = self._fusion()  # eps: sqrt(n * eps) for widths C and D
        rot = rot[0] if rot.shape[0] == 1 else rot  # one rotation for all rows: a plain matrix product
        last = len(self.layers) - 1
        for i, (layer, (wqkv, bias, w_qk, wo, mlp_norm, w_gate_up, w_down)) in enumerate(zip(self.layers, fused)):
            qkv = wqkv(x).div_(_norm_root(x, width_eps))  # [B, (H + 2K) D]
            if bias is not None:
                qkv = qkv + bias
            qk = qkv[:, :(H + K) * D].view(B, H + K, D)
            if w_qk is not None:
                qk = (qk * w_qk).div_(_norm_root(qk, head_eps))
            qk = qk @ rot  # [B, H+K, D]
            keys, values = cache.write(i, rows, qk[:, H:, None], qkv[:, (H + K) * D:].view(B, K, 1, D))
            x = x + wo(decode_attention(qk[:, :H], keys, values, rows.mask))
            if cache_only and i == last:
                break
            if w_gate_up is None:
                x = x + layer.mlp((x * mlp_norm).div_(_norm_root(x, width_eps)))
            else:
                gate, up = w_gate_up(x).div_(_norm_root(x, width_eps)).chunk(2, -1)
                x = x + w_down(F.silu(gate) * up)
            if after_layer is not None:
                x = after_layer(i, x)
        cache.commit(rows)
        return x

    def init_buffers(self, device: torch.device | str) -> None:
        """Recompute the rotary tables (non-persistent buffers) on `device` after building on the meta device
        and loading the weights, then `prepare`."""
        a = self.decoder_args
        self.freqs = inv_freq(a.head_dim, a.rope_theta).to(device)
        if self.axis_map is not None:
            self.axis_map = mrope_axis_map(a.head_dim, a.mrope_section).to(device)
        self.prepare()

    def prepare(self) -> None:
        """Once the weights are loaded: every layer matrix in its device's layout (linear.py `for_device`, and
        `for_decode_rows` for decode batches), and the derived tensors of `decode`. RMSNorm as
        (x @ (sqrt(n) * w * W)) / sqrt(sum(x^2) + n * eps), the same maths (`_norm_root`), with the norm
        weight folded into the matrix that reads it (per layer wqkv; the MLP's gate/up in dense layers, the MLP
        norm weight times sqrt(C) in MoE layers); the q and k norm weights stacked [H + K, D] times sqrt(D);
        the attention scale D**-0.5 folded into the q norm weight (or without q/k norms, into wqkv's q
        columns and bias); an identity matrix for `rotations`."""
        a, w = self.decoder_args, self.norm.weight
        C, D, q_width = a.dim, a.head_dim, a.n_heads * a.head_dim
        fused = []
        for layer in self.layers:
            for param in layer.parameters():
                param.data = for_device(param.data)
            attn, dense = layer.attn, isinstance(layer.mlp, SwiGLU)
            qkv_gain = torch.full((attn.wqkv.weight.shape[-1],), C ** 0.5, device=w.device)
            bias, w_qk = attn.wqkv.bias, None
            if attn.q_norm is None:
                qkv_gain[:q_width] *= D ** -0.5
                if bias is not None:
                    bias = torch.cat([bias[:q_width] * D ** -0.5, bias[q_width:]])
            else:
                w_qk = torch.cat([attn.q_norm.weight.expand(a.n_heads, -1),
                                  attn.k_norm.weight.expand(a.n_kv_heads, -1) * D ** 0.5])
            mlp_norm = None if dense else (layer.mlp_norm.weight.float() * C ** 0.5).to(w.dtype)
            fused.append((for_decode_rows(fold(layer.attn_norm.weight, attn.wqkv.weight, qkv_gain)), bias, w_qk,
                          for_decode_rows(attn.wo.weight), mlp_norm,
                          for_decode_rows(fold(layer.mlp_norm.weight, layer.mlp.w_gate_up.weight, C ** 0.5))
                          if dense else None,
                          for_decode_rows(layer.mlp.w_down.weight) if dense else None))
            if not dense:
                layer.mlp.prepare()
        eps = [torch.tensor(n * a.rms_eps, device=w.device).sqrt() for n in (C, D)]
        self._fused = fused, torch.eye(D, dtype=w.dtype, device=w.device), *eps

    def _fusion(self):
        if self._fused is None:
            self.prepare()
        return self._fused


def fold(norm: torch.Tensor, w: torch.Tensor, gain: float | torch.Tensor = 1.0) -> torch.Tensor:
    """An RMSNorm weight [C] folded into the matrix [..., C, N] that reads its output, times `gain` (a number or
    one per output column [N])."""
    return (norm.float()[:, None] * w.float() * gain).to(w.dtype)


def _norm_root(x: torch.Tensor, root_n_eps: torch.Tensor) -> torch.Tensor:
    """x [..., n], sqrt(n * eps) -> sqrt(sum(x^2) + n * eps) [..., 1]: sqrt(n) / RMSNorm's scale
    rsqrt(mean(x^2) + eps), in two tensor ops (a mean, or adding a Python number, costs more than one op)."""
    return torch.hypot(torch.linalg.vector_norm(x, dim=-1, keepdim=True), root_n_eps)
