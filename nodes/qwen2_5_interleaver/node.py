"""qwen2_5_interleaver: PromptTokens (+ audio/vision embeddings) -> the Qwen2.5-Omni ThinkerPrompt.

Expands each media placeholder to its tokens (audio in video: 2-second chunks), embeds the tokens with the
Thinker's embedding table, scatters the encoder outputs into their positions, and computes TMRoPE position ids
and rope_delta (nodes/qwen2_5/tmrope.py). Token ids, position_id_per_seconds and seconds_per_chunk come from
config.json.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.media_payloads import AudioEmbeddings, PromptTokens, ThinkerPrompt, TokenIds, VisionEmbeddings
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint


class Qwen25Interleaver(Node):
    kind = "qwen2_5_interleaver"
    needs_checkpoint = True
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="dtype of the prompt embeddings (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")

    inputs = (
        Input("prompt", PromptTokens, doc="Token ids with one placeholder per media item."),
        Input("audio", AudioEmbeddings, required=False, doc="Audio encoder output, clips in prompt order."),
        Input("vision", VisionEmbeddings, required=False, doc="Vision encoder output (images, videos)."),
    )
    outputs = (Output("thinker_prompt", ThinkerPrompt, doc="Expanded ids, embeddings, TMRoPE positions."),
               Output("input_ids", TokenIds, doc="The prompt's token ids with every placeholder expanded."))

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen2_5.tmrope import TmropeIds
        from .weights import load_embed_table

        if checkpoint is None:
            raise UserError(f"node '{self.name}' (qwen2_5_interleaver) needs a checkpoint (pass --checkpoint DIR)")
        self._ids = TmropeIds.from_hf_config(checkpoint.config)
        self._embed = load_embed_table(checkpoint, (self.weights or "thinker.") + "model.embed_tokens.",
                                       self.dtype, device)

    def process(self, prompt: PromptTokens, audio: AudioEmbeddings | None = None,
                vision: VisionEmbeddings | None = None) -> dict[str, Any]:
        import torch

        from .expand import build_thinker_prompt

        with torch.no_grad():  # not inference_mode: the payload's tensors may be used anywhere downstream
            built = build_thinker_prompt(prompt, audio, vision, self._embed, self._ids)
        return {"thinker_prompt": built, "input_ids": TokenIds(tuple(built.input_ids.tolist()))}
