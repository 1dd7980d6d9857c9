"""Qwen3-Omni Talker: the common decoder (nodes/common/decoder.py: q/k-norm GQA attention, interleaved MRoPE,
routed experts plus a sigmoid-gated shared expert in every layer) over input embeddings, predicting codebook 0
of each codec frame.

Shapes: B batch, T tokens this call, C talker width, Ct Thinker width, V codec vocabulary (codebook 0 plus
control ids), G code groups (codebooks), Vc codebook size.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..common.decoder import Decoder
from ..common.decoder_args import DecoderArgs
from ..common.kv_cache import KVCache, Rows
from ..common.linear import Linear


@dataclass(frozen=True)
class TalkerArgs:
    text: DecoderArgs  # decoder shape; every layer is sparse with a shared expert (mlp_only_layers and
    # decoder_sparse_step are ignored)
    thinker_dim: int  # Ct: width of the Thinker states fed through the projections
    resize_hidden: int  # width of text_projection / hidden_projection's first layer
    n_groups: int  # G codebooks per frame
    codebook_size: int  # Vc (code predictor vocabulary)

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> TalkerArgs:
        """From config.json (full, or its talker_config)."""
        t = config.get("talker_config", config)
        c = t["text_config"]
        text = DecoderArgs.from_hf_config(c)
        text = replace(text, sparse=(text.n_experts > 0,) * text.n_layers,
                       shared_hidden=c["shared_expert_intermediate_size"])
        cp = t.get("code_predictor_config") or {}
        return cls(text=text, thinker_dim=t["thinker_hidden_size"], resize_hidden=c["intermediate_size"],
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


class Talker(Decoder):
    def __init__(self, a: TalkerArgs):
        super().__init__(a.text)
        t = a.text
        self.args = a
        self.codec_embedding = nn.Embedding(t.vocab_size, t.dim)  # codebook 0 and control ids
        # the code predictor's tables of codebooks 1..G-1, stacked: [G-1, Vc, C] (they feed the next step)
        self.residual_embedding = nn.Parameter(torch.empty(a.n_groups - 1, a.codebook_size, t.dim))
        self.text_projection = ResizeMLP(a.thinker_dim, a.resize_hidden, t.dim)
        self.hidden_projection = ResizeMLP(a.thinker_dim, a.resize_hidden, t.dim)
        self.codec_head = Linear(t.dim, t.vocab_size)

    def frame_embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, G] of one frame -> the next step's codec input [B, C]:
        codec_embedding(c0) + sum over g >= 1 of residual_embedding[g-1](c_g)."""
        G = codes.shape[-1]
        rest = self.residual_embedding[torch.arange(G - 1, device=codes.device), codes[:, 1:]]  # [B, G-1, C]
        return self.codec_embedding(codes[:, 0]) + rest.sum(dim=1)

    def first_step(self, embeds: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None,
                   rows: Rows | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill: embeds [B, T, C], positions [3, B, T] -> (logits [B, V], last normed hidden [B, C]); several
        prompts right-padded to T when `rows` has their counts (each row's own last position)."""
        cos, sin = self.cos_sin(positions, embeds.dtype)  # [B, T, D]
        h = self.prefill(embeds, cos, sin, cache, rows, last_only=True)[:, 0]
        return self.codec_head(h), h

    def decode_step(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                    rows: Rows) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C] input embeddings, positions [B] (float: cache length + rope delta) -> (logits [B, V],
        normed hidden [B, C])."""
        h = self.norm(self.decode(x, self.rotations(positions), cache, rows))
        return self.codec_head(h), h
