"""Qwen3-Omni code predictor (MTP): a small dense decoder (q/k-norm GQA attention, 1D RoPE, SwiGLU) that
writes codebooks 1..G-1 of one frame, one per step, from [talker hidden, talker.codec_embedding(code 0)].

Shapes: B batch, T tokens this call, C width, D head_dim, G code groups, Vc codebook size, L layers.
Step g (1..G-1) predicts codebook g with head g-1; its input (for g >= 2) is codebook g-1's embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torch import nn

from omnigraph.nodes.common.attention import KVCache
from omnigraph.nodes.common.rmsnorm import RMSNorm
from omnigraph.nodes.common.rope import inv_freq, rope_cos_sin
from omnigraph.nodes.thinker.model import DecoderLayer, ThinkerArgs


@dataclass(frozen=True)
class CodePredictorArgs:
    text: ThinkerArgs  # decoder shape (dense layers: no experts)
    n_groups: int  # G
    talker_vocab: int  # rows of the talker's codec_embedding (code 0 plus control ids)

    @property
    def codebook_size(self) -> int:
        return self.text.vocab_size

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> CodePredictorArgs:
        """From config.json (full, or its talker_config)."""
        t = config.get("talker_config", config)
        c = dict(t["code_predictor_config"])
        c["num_experts"] = 0
        text = ThinkerArgs.from_hf_config(c)
        text = replace(text, mrope_section=(text.head_dim // 2, 0, 0))
        return cls(text=text, n_groups=t.get("num_code_groups", c.get("num_code_groups")),
                   talker_vocab=t["text_config"]["vocab_size"])


class CodePredictor(nn.Module):
    def __init__(self, a: CodePredictorArgs):
        super().__init__()
        t = a.text
        self.args = a
        self.talker_embedding = nn.Embedding(a.talker_vocab, t.dim)  # the talker's codec_embedding (code 0)
        self.codec_embedding = nn.Parameter(torch.empty(a.n_groups - 1, t.vocab_size, t.dim))  # [G-1, Vc, C]
        self.layers = nn.ModuleList(DecoderLayer(t, False) for _ in range(t.n_layers))
        self.norm = RMSNorm(t.dim, t.rms_eps)
        self.heads = nn.Parameter(torch.empty(a.n_groups - 1, t.dim, t.vocab_size))  # [G-1, C, Vc]
        self.register_buffer("freqs", inv_freq(t.head_dim, t.rope_theta), persistent=False)

    def new_cache(self, batch: int) -> list[KVCache]:
        t, w = self.args.text, self.heads
        return [KVCache.allocate(batch, t.n_kv_heads, self.args.n_groups, t.head_dim, w.dtype, w.device)
                for _ in self.layers]

    def rope(self) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin [G, D] of positions 0..G-1 (all a frame uses)."""
        pos = torch.arange(self.args.n_groups, device=self.freqs.device)
        return rope_cos_sin(pos, self.freqs, self.heads.dtype)

    def forward_tokens(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                       caches: Sequence[KVCache]) -> torch.Tensor:
        """x [B, T, C] continuing the cache; cos/sin [B, T, D] -> normed hidden of the last position [B, C]."""
        for i, layer in enumerate(self.layers):
            x = layer.prefill(x, cos, sin, caches[i]) if x.shape[1] > 1 else layer.decode(x, cos, sin, caches[i])
        return self.norm(x[:, -1])

    @torch.inference_mode()
    def frame(self, hidden: torch.Tensor, code0: torch.Tensor, choose: Callable[[torch.Tensor], torch.Tensor],
              caches: Sequence[KVCache], rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """hidden [B, C] (talker last normed hidden), code0 [B] -> codes [B, G] (code0 first).

        choose(logits [B, Vc]) -> [B] picks each code. `caches` are reset and reused (preallocated for G).
        """
        G = self.args.n_groups
        cos, sin = rope
        for cache in caches:
            cache.length = 0
        codes = torch.empty(hidden.shape[0], G, dtype=torch.long, device=hidden.device)
        codes[:, 0] = code0
        x = torch.stack([hidden, self.talker_embedding(code0)], dim=1)  # [B, 2, C]
        h = self.forward_tokens(x, cos[None, :2], sin[None, :2], caches)
        for g in range(1, G):
            codes[:, g] = choose(h @ self.heads[g - 1])
            if g + 1 < G:
                x = self.codec_embedding[g - 1][codes[:, g]][:, None]  # [B, 1, C]
                h = self.forward_tokens(x, cos[None, g + 1:g + 2], sin[None, g + 1:g + 2], caches)
        return codes
