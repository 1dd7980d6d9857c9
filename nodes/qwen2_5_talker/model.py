"""Qwen2.5-Omni Talker (reference qwen2.5-omni.md section 6): a dense Qwen2 decoder (q/k/v bias, no q/k norm,
M-RoPE with contiguous sections) on the common decoder, fed thinker-space inputs: every input (prompt states,
speaker and text embeddings, codec embeddings) is summed in the Thinker's width E and then projected by
`thinker_to_talker_proj` (with bias) to the talker width; `codec_head` gives logits over the codec vocabulary.

Shapes: B rows, T tokens this call, E Thinker width, C talker width, V codec vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..common.decoder import Decoder
from ..common.decoder_args import DecoderArgs
from ..common.kv_cache import KVCache, Rows
from ..common.linear import Linear
from ..common.rope import inv_freq, sectioned_axis_map


DEFAULT_MROPE_SECTION = (16, 24, 24)


@dataclass(frozen=True)
class TalkerIds:
    """Control ids of talker_config (section 6.1): codec ids of the Talker, text ids of the Thinker vocabulary."""

    codec_pad: int  # added at prompt position -2; also an EOS
    codec_bos: int  # added at prompt position -1; suppressed in generation
    codec_eos: int
    codec_mask: int  # the filler id of the prompt positions (the repetition penalty sees it)
    text_eos: int
    text_pad: int

    @classmethod
    def from_hf_config(cls, t: dict[str, Any]) -> TalkerIds:
        return cls(codec_pad=t.get("tts_codec_pad_token_id", 8292), codec_bos=t.get("tts_codec_start_token_id", 8293),
                   codec_eos=t.get("tts_codec_end_token_id", 8294), codec_mask=t.get("tts_codec_mask_token_id", 8296),
                   text_eos=t.get("tts_text_end_token_id", 151861), text_pad=t.get("tts_text_pad_token_id", 151859))


@dataclass(frozen=True)
class TalkerArgs:
    text: DecoderArgs
    thinker_dim: int  # E: embedding_size
    ids: TalkerIds

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> TalkerArgs:
        """From config.json (full, or its talker_config)."""
        t = config.get("talker_config", config)
        rope = {**(t.get("rope_scaling") or {}), **(t.get("rope_parameters") or {})}
        text = replace(DecoderArgs.from_hf_config(t), attention_bias=True)
        if "mrope_section" not in rope:  # Qwen2.5-Omni's default, not the decoder's (Qwen3-Omni's)
            text = replace(text, mrope_section=DEFAULT_MROPE_SECTION)
        return cls(text=text, thinker_dim=t["embedding_size"], ids=TalkerIds.from_hf_config(t))


class Talker(Decoder):
    def __init__(self, a: TalkerArgs):
        super().__init__(a.text, mrope=True, qk_norm=False)
        self.args = a
        self.embed_tokens = nn.Embedding(a.text.vocab_size, a.thinker_dim)  # codec ids, in thinker space
        self.thinker_to_talker_proj = Linear(a.thinker_dim, a.text.dim, bias=True)
        self.codec_head = Linear(a.text.dim, a.text.vocab_size)

    def init_buffers(self, device: str) -> None:
        """Rotary frequencies, the contiguous M-RoPE sections (t, h, w), and the fused decode weights."""
        t = self.args.text
        self.freqs = inv_freq(t.head_dim, t.rope_theta).to(device)
        self.axis_map = sectioned_axis_map(t.mrope_section).to(device)
        if device != "meta":
            self.prepare()

    def first_logits(self, inputs: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None,
                     rows: Rows | None = None) -> torch.Tensor:
        """Prefill: inputs [B, T, E] (thinker space), positions [3, B, T] -> the last position's logits [B, V]."""
        x = self.thinker_to_talker_proj(inputs)
        cos, sin = self.cos_sin(positions, x.dtype)
        return self.codec_head(self.prefill(x, cos, sin, cache, rows)[:, -1]).float()

    def step_logits(self, inputs: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                    rows: Rows) -> torch.Tensor:
        """Decode: inputs [B, E] (codec embedding + trailing text state), positions [B] -> logits [B, V]."""
        h = self.decode(self.thinker_to_talker_proj(inputs), self.rotations(positions), cache, rows)
        return self.codec_head(self.norm(h)).float()
