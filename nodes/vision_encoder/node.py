"""vision_encoder: the prompt's images and videos -> merged vision embeddings plus deepstack features."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ...runtime.node import Node
from ...runtime.ports import Input, Output
from ..common.media_payloads import VisionEmbeddings
from ..common.vision_prompts import Pixels, VisionConfig
from ..qwen.payloads import PromptTokens
from ..qwen3.default_checkpoint import tiny_random_checkpoint

# Patches per batched forward on CPU, measured on the small checkpoint (CPU time, one core): 8 images of 96x96
# took 17 ms together vs 41 ms one by one, 8 of 96x96 to 224x224 (856 patches) 50 vs 69 ms, 8 of 224x224 and
# 320x240 (2064 patches) 128 vs 134 ms, while 8 of 96x96 to 640x480 (3316 patches) were 20% slower together.
CPU_PATCHES = 2048


class VisionEncoderNode(Node):
    """Qwen3-Omni's vision tower (Qwen3-VL style) with its image and video preprocessing."""

    kind = "vision_encoder"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(VisionConfig):
        video_min_pixels: Pixels = Field(
            None, description="Smallest resized video frame area (default 131072, the Qwen3-Omni processor's).")
        video_max_pixels: Pixels = Field(
            None, description="Largest resized video frame area (default 786432, the Qwen3-Omni processor's).")

    inputs = (Input("prompt", PromptTokens, doc="A tokenised prompt with its decoded images and videos."),)
    outputs = (Output("vision", VisionEmbeddings,
                      doc="Embeddings of every image and video in prompt order; absent when there are none."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.step_batcher import StepBatcher
        from ..common.vision_prompts import preprocess_args
        from .weights import PREFIX, load_vision_encoder

        self._model = load_vision_encoder(checkpoint, self.weights or PREFIX, dtype=self.dtype, device=device)
        self._prep = preprocess_args(checkpoint, self._model.args, self.config)
        self._device = device
        self._batcher = StepBatcher(self._encode, self.config.max_batch, f"{self.name}: vision batch")

    def process(self, prompt: PromptTokens) -> dict[str, Any]:
        from .model import check_grids
        from ..common.vision_prompts import prompt_patches

        batch = prompt_patches(prompt, self._prep)
        if batch is None:
            return {}
        check_grids(batch.grids, batch.pixels.shape[0], self._model.args.spatial_merge_size)
        merged, deepstack = self._batcher.call((batch.pixels, batch.grids))
        return {"vision": VisionEmbeddings(merged, deepstack, batch.grids, batch.kinds, batch.seconds_per_grid)}

    def _encode(self, prompts: list[tuple[Any, tuple]]) -> list[tuple[Any, tuple]]:
        """The patches of several prompts encoded as packed batches (attention never crosses an image or a
        video frame, so each prompt's embeddings are those it gets alone), split back per prompt:
        -> (merged [K_i, Do], deepstack levels [K_i, Do]) per prompt. On CPU a forward takes prompts up to
        CPU_PATCHES patches (a larger prompt goes alone)."""
        cap = None if self._device.startswith("cuda") else CPU_PATCHES
        out, part, patches = [], [], 0
        for prompt in prompts:
            if part and cap is not None and patches + prompt[0].shape[0] > cap:
                out += self._encode_together(part)
                part, patches = [], 0
            part.append(prompt)
            patches += prompt[0].shape[0]
        return out + self._encode_together(part)

    def _encode_together(self, prompts: list[tuple[Any, tuple]]) -> list[tuple[Any, tuple]]:
        from ..common.vision_prompts import encode_packed

        def forward(pixels, grids):
            merged, deepstack = self._model(pixels.to(self._device), grids)
            return merged, *deepstack

        out = encode_packed(prompts, forward, self._model.args.spatial_merge_size)
        return [(merged, tuple(deepstack)) for merged, *deepstack in out]
