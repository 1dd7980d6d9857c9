"""What the Qwen Thinker-prompt interleaver kinds share: config, ports and the call of their build function.

A kind subclasses PromptInterleaver, names itself and, in `setup`, sets `_ids` (its token-id table), `_embed`
(the Thinker's embedding table [V, C]) and `_build` (its build_thinker_prompt).
"""
from __future__ import annotations

from typing import Any, Callable

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..common.media_payloads import AudioEmbeddings, VisionEmbeddings
from ..common.token_payloads import TokenIds
from .payloads import PromptTokens, ThinkerPrompt


class PromptInterleaver(Node):
    needs_checkpoint = True
    _build: Callable[..., ThinkerPrompt]
    _ids: Any
    _embed: Any

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="dtype of the prompt embeddings (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")

    inputs = (
        Input("prompt", PromptTokens, doc="Token ids with one placeholder per media item."),
        Input("audio", AudioEmbeddings, required=False, doc="Audio encoder output, clips in prompt order."),
        Input("vision", VisionEmbeddings, required=False, doc="Vision encoder output (images, videos)."),
    )
    outputs = (Output("thinker_prompt", ThinkerPrompt, doc="Expanded ids, embeddings, 3D (TM-RoPE) positions."),
               Output("input_ids", TokenIds, doc="The prompt's token ids with every placeholder expanded."))

    def process(self, prompt: PromptTokens, audio: AudioEmbeddings | None = None,
                vision: VisionEmbeddings | None = None) -> dict[str, Any]:
        import torch

        with torch.no_grad():  # not inference_mode: the payload's tensors may be used anywhere downstream
            built = self._build(prompt, audio, vision, self._embed, self._ids)
        return {"thinker_prompt": built, "input_ids": TokenIds(tuple(built.input_ids.tolist()))}
