"""mrope_interleaver: PromptTokens (+ audio/vision embeddings) -> ThinkerPrompt.

Expands each media placeholder to its tokens, embeds the tokens with the Thinker's embedding table, scatters
the encoder outputs into their positions, and computes TM-RoPE position ids, rope_delta, the visual mask and
the deepstack features in sequence order. Token ids and position_id_per_seconds come from config.json.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..common.media_payloads import AudioEmbeddings, VisionEmbeddings
from ..common.token_payloads import TokenIds
from ..qwen.payloads import PromptTokens, ThinkerPrompt
from ..qwen3.default_checkpoint import tiny_random_checkpoint


class MropeInterleaver(Node):
    kind = "mrope_interleaver"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="dtype of the prompt embeddings (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")

    inputs = (
        Input("prompt", PromptTokens, doc="Token ids with one placeholder per media item."),
        Input("audio", AudioEmbeddings, required=False, doc="Audio encoder output, clips in prompt order."),
        Input("vision", VisionEmbeddings, required=False, doc="Vision encoder output (images, videos)."),
    )
    outputs = (Output("thinker_prompt", ThinkerPrompt, doc="Expanded ids, embeddings, 3D positions."),
               Output("input_ids", TokenIds, doc="The prompt's token ids with every placeholder expanded."))

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen.special_tokens import media_token_ids
        from ..qwen3.thinker_embeddings import load_embed_table

        root = self.weights or "thinker."
        self._ids = media_token_ids(checkpoint.config)
        self._embed = load_embed_table(checkpoint, root, self.dtype, device)

    def process(self, prompt: PromptTokens, audio: AudioEmbeddings | None = None,
                vision: VisionEmbeddings | None = None) -> dict[str, ThinkerPrompt]:
        import torch

        from .interleave import build_thinker_prompt

        with torch.no_grad():  # not inference_mode: the payload's tensors may be used anywhere downstream
            built = build_thinker_prompt(prompt, audio, vision, self._embed, self._ids)
        return {"thinker_prompt": built, "input_ids": TokenIds(tuple(built.input_ids.tolist()))}
