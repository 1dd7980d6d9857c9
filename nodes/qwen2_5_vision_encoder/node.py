"""qwen2_5_vision_encoder: the prompt's images and videos -> merged vision embeddings (Qwen2.5-Omni, no deepstack)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ...runtime.errors import UserError
from ..qwen.payloads import PromptTokens
from ..common.media_payloads import VisionEmbeddings
from ..common.vision_prompts import Pixels, VisionConfig
from ...runtime.node import Node
from ...runtime.ports import Input, Output
from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint

VIDEO_MIN_PIXELS = 128 * 28 * 28  # the Qwen2.5-Omni processor's per-frame video limits
VIDEO_MAX_PIXELS = 768 * 28 * 28


class Qwen25VisionEncoderNode(Node):
    """Qwen2.5-Omni's vision tower (Qwen2.5-VL ViT, patch 14, window attention) with its image and video
    preprocessing. Sizes come from config.json (thinker_config.vision_config); resize limits and normalisation
    from preprocessor_config.json when the checkpoint has one."""

    kind = "qwen2_5_vision_encoder"
    needs_checkpoint = True
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(VisionConfig):
        video_min_pixels: Pixels = Field(
            None, description=f"Smallest resized video frame area (default {VIDEO_MIN_PIXELS}, the processor's).")
        video_max_pixels: Pixels = Field(
            None, description=f"Largest resized video frame area (default {VIDEO_MAX_PIXELS}, the processor's).")

    inputs = (Input("prompt", PromptTokens, doc="A tokenised prompt with its decoded images and videos."),)
    outputs = (Output("vision", VisionEmbeddings, doc="Merged embeddings of every image and video in prompt "
                                                      "order (no deepstack levels); absent when there are none."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.step_batcher import StepBatcher
        from ..common.vision_prompts import preprocess_args
        from .weights import PREFIX, load_vision_encoder

        try:
            self._model = load_vision_encoder(checkpoint, self.dtype, device, self.weights or PREFIX)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{checkpoint.path}/config.json: thinker_config.vision_config: {exc}") from None
        self._prep = preprocess_args(checkpoint, self._model.args, self.config, VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)
        self._device = device
        self._batcher = StepBatcher(self._encode, self.config.max_batch, f"{self.name}: vision batch")

    def process(self, prompt: PromptTokens) -> dict[str, Any]:
        from ..common.vision_prompts import prompt_patches

        batch = prompt_patches(prompt, self._prep)
        if batch is None:
            return {}
        merged = self._batcher.call((batch.pixels, batch.grids))
        return {"vision": VisionEmbeddings(merged, (), batch.grids, batch.kinds, batch.seconds_per_grid)}

    def _encode(self, prompts: list[tuple[Any, tuple]]) -> list[Any]:
        """The patches of several prompts encoded in one packed forward (attention never crosses a window or
        a frame of one item, so each prompt's embeddings are those it gets alone), split back per prompt."""
        from ..common.vision_prompts import encode_packed

        out = encode_packed(prompts, lambda pixels, grids: (self._model(pixels.to(self._device), grids),),
                            self._model.args.spatial_merge_size)
        return [merged for merged, in out]
