"""Qwen3-Omni Talker: a MoE decoder (q/k-norm GQA attention, interleaved MRoPE, routed experts plus a
sigmoid-gated shared expert in every layer) over input embeddings, predicting codebook 0 of each codec frame.

Shapes: B batch, T tokens this call, C talker width, Ct Thinker width, V codec vocabulary (codebook 0 plus
control ids), G code groups (codebooks), Vc codebook size.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.attention import Attention, KVCache
from ..common.linear import Linear
from ..common.moe import MoE
from ..common.rmsnorm import RMSNorm
from ..common.rope import apply_rope, inv_freq, mrope_axis_map, mrope_cos_sin, rope_cos_sin
from ..thinker.model import ThinkerArgs


@dataclass(frozen=True)
class TalkerArgs:
    text: ThinkerArgs  # decoder shape; every layer is sparse (mlp_only_layers / sparse_step are ignored)
    shared_hidden: int  # shared expert width
    thinker_dim: int  # Ct: width of the Thinker states fed through the projections
    resize_hidden: int  # width of text_projection / hidden_projection's first layer
    n_groups: int  # G codebooks per frame
    codebook_size: int  # Vc (code predictor vocabulary)

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> TalkerArgs:
        """From config.json (full, or its talker_config)."""
        t = config.get("talker_config", config)
        c = t["text_config"]
        text = ThinkerArgs.from_hf_config(c)
        text = replace(text, sparse=(text.n_experts > 0,) * text.n_layers)
        cp = t.get("code_predictor_config") or {}
        return cls(text=text, shared_hidden=c["shared_expert_intermediate_size"],
                   thinker_dim=t["thinker_hidden_size"], resize_hidden=c["intermediate_size"],
                   n_groups=t.get("num_code_groups", cp.get("num_code_groups")),
                   codebook_size=cp.get("vocab_size", 2048))


class ResizeMLP(nn.Module):
    """fc2(silu(fc1(x))) with biases: Thinker width -> talker width."""

    def __init__(self, dim_in: int, hidden: int, dim_out: int):
        super().__init__()
        self.fc1 = Linear(dim_in, hidden, bias=True)
        self.fc2 = Linear(hidden, dim_out, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)))


class TalkerLayer(nn.Module):
    def __init__(self, a: TalkerArgs):
        super().__init__()
        t = a.text
        self.attn_norm = RMSNorm(t.dim, t.rms_eps)
        self.attn = Attention(t.dim, t.n_heads, t.n_kv_heads, t.head_dim, t.rms_eps, qk_norm=True,
                              qkv_bias=t.attention_bias)
        self.mlp_norm = RMSNorm(t.dim, t.rms_eps)
        self.mlp = MoE(t.dim, t.n_experts, t.top_k, t.moe_hidden, t.norm_topk_prob, shared_hidden=a.shared_hidden)

    def prefill(self, x, cos, sin, cache: KVCache | None):
        x = x + self.attn.prefill(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.mlp_norm(x))

    def decode(self, x, cos, sin, cache: KVCache):
        x = x + self.attn.decode(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.mlp_norm(x))


class Talker(nn.Module):
    def __init__(self, a: TalkerArgs):
        super().__init__()
        t = a.text
        self.args = a
        self.codec_embedding = nn.Embedding(t.vocab_size, t.dim)  # codebook 0 and control ids
        # the code predictor's tables of codebooks 1..G-1, stacked: [G-1, Vc, C] (they feed the next step)
        self.residual_embedding = nn.Parameter(torch.empty(a.n_groups - 1, a.codebook_size, t.dim))
        self.text_projection = ResizeMLP(a.thinker_dim, a.resize_hidden, t.dim)
        self.hidden_projection = ResizeMLP(a.thinker_dim, a.resize_hidden, t.dim)
        self.layers = nn.ModuleList(TalkerLayer(a) for _ in range(t.n_layers))
        self.norm = RMSNorm(t.dim, t.rms_eps)
        self.codec_head = Linear(t.dim, t.vocab_size)
        self.register_buffer("freqs", inv_freq(t.head_dim, t.rope_theta), persistent=False)
        self.register_buffer("axis_map", mrope_axis_map(t.head_dim, t.mrope_section), persistent=False)

    def new_cache(self, batch: int, max_len: int) -> list[KVCache]:
        t, w = self.args.text, self.codec_head.weight
        return [KVCache.allocate(batch, t.n_kv_heads, max_len, t.head_dim, w.dtype, w.device) for _ in self.layers]

    def frame_embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, G] of one frame -> the next step's codec input [B, C]:
        codec_embedding(c0) + sum over g >= 1 of residual_embedding[g-1](c_g)."""
        G = codes.shape[-1]
        rest = self.residual_embedding[torch.arange(G - 1, device=codes.device), codes[:, 1:]]  # [B, G-1, C]
        return self.codec_embedding(codes[:, 0]) + rest.sum(dim=1)

    def prefill(self, embeds: torch.Tensor, positions: torch.Tensor,
                caches: Sequence[KVCache] | None) -> tuple[torch.Tensor, torch.Tensor]:
        """embeds [B, T, C], positions [3, B, T] -> (logits [B, V], last normed hidden [B, C])."""
        cos, sin = mrope_cos_sin(positions, self.freqs, self.axis_map, embeds.dtype)  # [B, T, D]
        x = embeds
        for i, layer in enumerate(self.layers):
            x = layer.prefill(x, cos, sin, None if caches is None else caches[i])
        h = self.norm(x[:, -1])
        return self.codec_head(h), h

    def decode_step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                    caches: Sequence[KVCache]) -> tuple[torch.Tensor, torch.Tensor]:
        """x [1, C] one input embedding; cos/sin [1, 1, D] of its position -> (logits [1, V], normed hidden [1, C]).

        The attention maths of TalkerLayer.decode written for one token with few tensor ops: the input RMSNorm
        weight folded into wqkv (rmsnorm(x) @ W == rsqrt(mean(x^2) + eps) * (x @ (w * W))), q/k norms as one
        call, RoPE as one [D, D] product shared by all layers.
        """
        H, K, D, eps = self._shape
        rot = apply_rope(self._eye, cos[0], sin[0])  # [D, D]: x @ rot == x * cos + rotate_half(x) * sin
        pos = caches[0].length
        for cache in caches:
            cache.reserve(pos + 1)
        for layer, (wqkv, bias, w_qk, wo), cache in zip(self.layers, self._fast, caches):
            qkv = (x @ wqkv) * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)  # [1, (H + 2K) D]
            if bias is not None:
                qkv = qkv + bias
            qk = (F.rms_norm(qkv[0, :(H + K) * D].view(H + K, D), (D,), None, eps) * w_qk) @ rot  # [H + K, D]
            cache.k[0, :, pos] = qk[H:]
            cache.v[0, :, pos] = qkv[0, (H + K) * D:].view(K, D)
            cache.length = pos + 1
            out = F.scaled_dot_product_attention(qk[:H].view(1, H, 1, D), cache.k[:, :, :pos + 1],
                                                 cache.v[:, :, :pos + 1], enable_gqa=True)  # [1, H, 1, D]
            x = x + out.view(1, H * D) @ wo
            x = x + layer.mlp(layer.mlp_norm(x))
        h = self.norm(x)
        return self.codec_head(h), h

    def prepare(self) -> None:
        """Derived tensors, once the weights are loaded (see decode_step)."""
        t = self.args.text
        H, K = t.n_heads, t.n_kv_heads
        self._shape = (H, K, t.head_dim, t.rms_eps)
        self._eye = torch.eye(t.head_dim, dtype=self.codec_head.weight.dtype, device=self.codec_head.weight.device)
        self._fast = [((layer.attn_norm.weight.float()[:, None] * layer.attn.wqkv.weight.float()).to(
                           layer.attn.wqkv.weight.dtype), layer.attn.wqkv.bias,
                       torch.cat([layer.attn.q_norm.weight.expand(H, -1), layer.attn.k_norm.weight.expand(K, -1)]),
                       layer.attn.wo.weight) for layer in self.layers]

    def decode_rope(self, start: int, count: int, rope_delta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin [count, D] for decode positions start + i + rope_delta (the same on all 3 axes)."""
        pos = torch.arange(start, start + count, device=self.freqs.device).float() + float(rope_delta)
        return rope_cos_sin(pos, self.freqs, self.codec_head.weight.dtype)
