"""mrope_interleaver: PromptTokens (+ audio/vision embeddings) -> ThinkerPrompt.

Expands each media placeholder to its tokens, embeds the tokens with the Thinker's embedding table, scatters
the encoder outputs into their positions, and computes TM-RoPE position ids, rope_delta, the visual mask and
the deepstack features in sequence order. Token ids and position_id_per_seconds come from config.json.
"""
from __future__ import annotations

from typing import Any

from ..qwen.prompt_interleaver import PromptInterleaver
from ..qwen3.default_checkpoint import tiny_random_checkpoint


class MropeInterleaver(PromptInterleaver):
    kind = "mrope_interleaver"
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen.special_tokens import media_token_ids
        from ..qwen3.thinker_embeddings import load_embed_table
        from .interleave import build_thinker_prompt

        root = self.weights or "thinker."
        self._ids = media_token_ids(checkpoint.config)
        self._embed = load_embed_table(checkpoint, root, self.dtype, device)
        self._build = build_thinker_prompt
