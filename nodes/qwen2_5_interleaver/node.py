"""qwen2_5_interleaver: PromptTokens (+ audio/vision embeddings) -> the Qwen2.5-Omni ThinkerPrompt.

Expands each media placeholder to its tokens (audio in video: 2-second chunks), embeds the tokens with the
Thinker's embedding table, scatters the encoder outputs into their positions, and computes TMRoPE position ids
and rope_delta (nodes/qwen2_5/tmrope.py). Token ids, position_id_per_seconds and seconds_per_chunk come from
config.json.
"""
from __future__ import annotations

from typing import Any

from ..qwen.prompt_interleaver import PromptInterleaver
from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint


class Qwen25Interleaver(PromptInterleaver):
    kind = "qwen2_5_interleaver"
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen2_5.tmrope import TmropeIds
        from .expand import build_thinker_prompt
        from .weights import load_embed_table

        self._ids = TmropeIds.from_hf_config(checkpoint.config)
        self._embed = load_embed_table(checkpoint, (self.weights or "thinker.") + "model.embed_tokens.",
                                       self.dtype, device)
        self._build = build_thinker_prompt
