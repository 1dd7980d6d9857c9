"""vision_encoder: the prompt's images and videos -> merged vision embeddings plus deepstack features."""
from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field, StrictFloat, model_validator

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..common.media_payloads import VisionEmbeddings
from ..qwen.payloads import PromptTokens
from ..qwen3.default_checkpoint import tiny_random_checkpoint

Triple = Optional[tuple[StrictFloat, StrictFloat, StrictFloat]]  # written as a YAML list
Pixels = Optional[Annotated[int, Field(ge=1, le=1 << 28)]]
# Patches per batched forward on CPU, measured on the small checkpoint (CPU time, one core): 8 images of 96x96
# took 17 ms together vs 41 ms one by one, 8 of 96x96 to 224x224 (856 patches) 50 vs 69 ms, 8 of 224x224 and
# 320x240 (2064 patches) 128 vs 134 ms, while 8 of 96x96 to 640x480 (3316 patches) were 20% slower together.
CPU_PATCHES = 2048


class VisionEncoderNode(Node):
    """Qwen3-Omni's vision tower (Qwen3-VL style) with its image and video preprocessing."""

    kind = "vision_encoder"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        min_pixels: Pixels = Field(
            None, description="Smallest resized image area (default: preprocessor_config.json, else 3136).")
        max_pixels: Pixels = Field(
            None, description="Largest resized image area (default: preprocessor_config.json, else 12845056).")
        video_min_pixels: Pixels = Field(
            None, description="Smallest resized video frame area (default 131072, the Qwen3-Omni processor's).")
        video_max_pixels: Pixels = Field(
            None, description="Largest resized video frame area (default 786432, the Qwen3-Omni processor's).")
        image_mean: Triple = Field(None, strict=False, description="Per-channel mean (default: "
                                   "preprocessor_config.json, else the OpenAI-CLIP values).")
        image_std: Triple = Field(None, strict=False, description="Per-channel std (default: "
                                  "preprocessor_config.json, else the OpenAI-CLIP values).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' prompts encoded in one "
                               "batched call (more wait for the next call).")

        @model_validator(mode="after")
        def _limits_ordered(self):
            for lo, hi in (("min_pixels", "max_pixels"), ("video_min_pixels", "video_max_pixels")):
                a, b = getattr(self, lo), getattr(self, hi)
                if a is not None and b is not None and a > b:
                    raise ValueError(f"{lo} ({a}) must not exceed {hi} ({b})")
            if self.image_std is not None and any(s <= 0 for s in self.image_std):
                raise ValueError(f"image_std values must be positive, got {list(self.image_std)}")
            return self

    inputs = (Input("prompt", PromptTokens, doc="A tokenised prompt with its decoded images and videos."),)
    outputs = (Output("vision", VisionEmbeddings,
                      doc="Embeddings of every image and video in prompt order; absent when there are none."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.step_batcher import StepBatcher
        from ..common.vision_preprocess import PreprocessArgs
        from .weights import PREFIX, load_vision_encoder

        self._model = load_vision_encoder(checkpoint, self.weights or PREFIX, dtype=self.dtype, device=device)
        a = self._model.args
        c = self.config
        self._prep = PreprocessArgs.from_files(
            checkpoint.json_file("preprocessor_config.json"), checkpoint.json_file("video_preprocessor_config.json"),
            a.patch_size, a.temporal_patch_size, a.spatial_merge_size,
            min_pixels=c.min_pixels, max_pixels=c.max_pixels, video_min_pixels=c.video_min_pixels,
            video_max_pixels=c.video_max_pixels, image_mean=c.image_mean, image_std=c.image_std,
            video_mean=c.image_mean, video_std=c.image_std)
        self._device = device
        self._batcher = StepBatcher(self._encode, self.config.max_batch, f"{self.name}: vision batch")

    def process(self, prompt: PromptTokens) -> dict[str, Any]:
        import torch

        from .model import check_grids
        from ..common.vision_preprocess import preprocess_image, preprocess_video

        items = _visual_items(prompt)
        if not items:
            return {}
        patches, grids, seconds = [], [], []
        for kind, index in items:
            item = prompt.images[index] if kind == "image" else prompt.videos[index]
            what = f"{kind} {index} of the prompt" + (f" (from '{item.source}')" if item.source else "")
            if kind == "image":
                rows, grid = preprocess_image(item.pixels, self._prep, what)
                seconds.append(0.0)
            else:
                video = item
                if not video.fps > 0:
                    raise UserError(f"{what} has fps {video.fps}; the fps frames were sampled at must be > 0")
                rows, grid = preprocess_video(video.frames, self._prep, what)
                seconds.append(self._prep.temporal_patch_size / video.fps)
            patches.append(rows)
            grids.append(grid)
        pixels = torch.cat(patches)
        check_grids(grids, pixels.shape[0], self._model.args.spatial_merge_size)
        merged, deepstack = self._batcher.call((pixels, tuple(grids)))
        return {"vision": VisionEmbeddings(merged, deepstack, tuple(grids), tuple(k for k, _ in items),
                                           tuple(seconds))}

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
        import torch

        pixels = torch.cat([p for p, _ in prompts]).to(self._device)
        merged, deepstack = self._model(pixels, [g for _, grids in prompts for g in grids])
        tokens = [p.shape[0] // self._model.args.spatial_merge_size ** 2 for p, _ in prompts]
        parts = [t.split(tokens) for t in (merged, *deepstack)]  # per level, per prompt
        return [(level[0].clone(), tuple(d.clone() for d in level[1:])) for level in zip(*parts)]


def _visual_items(prompt: PromptTokens) -> list[tuple[str, int]]:
    """(kind, index) of each image and video in the order of `prompt.media`, checked against the media lists:
    the n images (videos) must be named once each, in order, as indexes 0..n-1."""
    items = [(m.kind, m.index) for m in prompt.media if m.kind in ("image", "video")]
    for kind, have in (("image", len(prompt.images)), ("video", len(prompt.videos))):
        named = [i for k, i in items if k == kind]
        if named != list(range(have)):
            raise UserError(f"the prompt holds {have} {kind}(s) but its media list names {kind} indexes {named}; "
                            f"expected {list(range(have))} (each {kind} once, in prompt order)")
    return items
