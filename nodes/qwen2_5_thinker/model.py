"""The Qwen2.5-Omni Thinker text decoder: embeddings, the common decoder (nodes/common/decoder.py: dense SwiGLU
layers, GQA attention with q/k/v bias and no q/k norm, M-RoPE with contiguous sections) and an untied lm_head.
`hidden` runs a prefill (many tokens of one sequence), `decode_hidden` one token for each of many sequences.

Shapes: B rows, T tokens this call, C hidden, V vocabulary. Hidden states are final-normed (Hugging Face's last
`output_hidden_states` entry), what the lm_head and the Talker read.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ..common.decode_head import DecodeHeads
from ..common.decoder import Decoder
from ..common.decoder_args import DecoderArgs
from ..common.kv_cache import KVCache, Rows
from ..common.linear import Linear
from ..common.rope import inv_freq, sectioned_axis_map


def thinker_args(config: dict[str, Any]) -> DecoderArgs:
    """From the FULL config.json dict (or its thinker_config): every layer dense, q/k/v with bias."""
    thinker = config.get("thinker_config", config)
    base = DecoderArgs.from_hf_config(thinker)
    args = replace(base, attention_bias=True, sparse=(False,) * base.n_layers)
    if sum(args.mrope_section) != args.head_dim // 2:
        raise ValueError(f"thinker_config.text_config.rope_parameters.mrope_section {list(args.mrope_section)} "
                         f"must sum to head_dim/2 = {args.head_dim // 2}")
    return args


class Qwen25Thinker(DecodeHeads, Decoder):
    def __init__(self, args: DecoderArgs):
        super().__init__(args, qk_norm=False)
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dim)
        self.lm_head = Linear(args.dim, args.vocab_size)
        with torch.device("cpu"):  # contiguous sections: frequency j turns with one axis (computed off meta)
            self.axis_map = sectioned_axis_map(args.mrope_section).to(self.freqs.device)

    def init_buffers(self, device: str) -> None:
        """Rotary tables (not weights) and the decode path's fused matrices, once the weights are in."""
        self.freqs = inv_freq(self.args.head_dim, self.args.rope_theta).to(device)
        self.axis_map = sectioned_axis_map(self.args.mrope_section).to(device)
        self.prepare()

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden [..., C] -> logits [..., V]."""
        return self.lm_head(x)

    def hidden(self, embeds: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None,
               rows: Rows | None = None) -> torch.Tensor:
        """Prefill: embeds [B, T, C], positions [3, B, T] -> final-normed hidden [B, T, C] (the rows' cache slots
        filled; with a cache B = 1 or right-padded whole prompts, see Decoder.prefill; no cache: whole causal
        sequences)."""
        cos, sin = self.cos_sin(positions, embeds.dtype)
        return self.prefill(embeds, cos, sin, cache, rows)

    def decode_hidden(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                      rows: Rows) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B] of the rows' sequences, positions [B] (cache length + rope delta, the same on every axis)
        -> (final-normed hidden [B, C], the tokens' embeddings [B, C])."""
        x = self.embed_tokens(tokens)
        return self.norm(self.decode(x, self.rotations(positions), cache, rows)), x

    def decode_head_weight(self) -> torch.Tensor:
        """The lm_head [C, V] of decode steps (decode_head.py: `batch_head`, `best_head`)."""
        return self.lm_head.weight
