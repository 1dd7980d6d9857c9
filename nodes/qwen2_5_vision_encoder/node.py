"""qwen2_5_vision_encoder: the prompt's images and videos -> merged vision embeddings (Qwen2.5-Omni, no deepstack)."""
from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field, StrictFloat, model_validator

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.media_payloads import PromptTokens, VisionEmbeddings
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint

Triple = Optional[tuple[StrictFloat, StrictFloat, StrictFloat]]  # written as a YAML list
Pixels = Optional[Annotated[int, Field(ge=1, le=1 << 28)]]
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

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        min_pixels: Pixels = Field(
            None, description="Smallest resized image area (default: preprocessor_config.json, else 3136).")
        max_pixels: Pixels = Field(
            None, description="Largest resized image area (default: preprocessor_config.json, else 12845056).")
        video_min_pixels: Pixels = Field(
            None, description=f"Smallest resized video frame area (default {VIDEO_MIN_PIXELS}, the processor's).")
        video_max_pixels: Pixels = Field(
            None, description=f"Largest resized video frame area (default {VIDEO_MAX_PIXELS}, the processor's).")
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
    outputs = (Output("vision", VisionEmbeddings, doc="Merged embeddings of every image and video in prompt "
                                                      "order (no deepstack levels); absent when there are none."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.step_batcher import StepBatcher
        from ..vision_encoder.preprocess import PreprocessArgs
        from .weights import PREFIX, load_vision_encoder

        if checkpoint is None:
            raise UserError(f"node '{self.name}' ({self.kind}) needs a checkpoint: pass --checkpoint DIR")
        try:
            self._model = load_vision_encoder(checkpoint, self.dtype, device, self.weights or PREFIX)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{checkpoint.path}/config.json: thinker_config.vision_config: {exc}") from None
        a, c = self._model.args, self.config
        self._prep = PreprocessArgs.from_files(
            checkpoint.json_file("preprocessor_config.json"), checkpoint.json_file("video_preprocessor_config.json"),
            a.patch_size, a.temporal_patch_size, a.spatial_merge_size,
            min_pixels=c.min_pixels, max_pixels=c.max_pixels,
            video_min_pixels=c.video_min_pixels or VIDEO_MIN_PIXELS,
            video_max_pixels=c.video_max_pixels or VIDEO_MAX_PIXELS,
            image_mean=c.image_mean, image_std=c.image_std, video_mean=c.image_mean, video_std=c.image_std)
        self._device = device
        self._batcher = StepBatcher(self._encode, self.config.max_batch, f"{self.name}: vision batch")

    def process(self, prompt: PromptTokens) -> dict[str, Any]:
        import torch

        from ..vision_encoder.preprocess import preprocess_image, preprocess_video

        items = visual_items(prompt)
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
                if not item.fps > 0:
                    raise UserError(f"{what} has fps {item.fps}; the fps frames were sampled at must be > 0")
                rows, grid = preprocess_video(item.frames, self._prep, what)
                seconds.append(self._prep.temporal_patch_size / item.fps)
            patches.append(rows)
            grids.append(grid)
        merged = self._batcher.call((torch.cat(patches), tuple(grids)))
        return {"vision": VisionEmbeddings(merged, (), tuple(grids), tuple(k for k, _ in items), tuple(seconds))}

    def _encode(self, prompts: list[tuple[Any, tuple]]) -> list[Any]:
        """The patches of several prompts encoded in one packed forward (attention never crosses a window or
        a frame of one item, so each prompt's embeddings are those it gets alone), split back per prompt."""
        import torch

        pixels = torch.cat([p for p, _ in prompts]).to(self._device)
        merged = self._model(pixels, [g for _, grids in prompts for g in grids])
        tokens = [p.shape[0] // self._model.args.spatial_merge_size ** 2 for p, _ in prompts]
        return [m.clone() for m in merged.split(tokens)]  # own storage per prompt


def visual_items(prompt: PromptTokens) -> list[tuple[str, int]]:
    """(kind, index) of each image and video in the order of `prompt.media`, checked against the media lists:
    the n images (videos) must be named once each, in order, as indexes 0..n-1."""
    items = [(m.kind, m.index) for m in prompt.media if m.kind in ("image", "video")]
    for kind, have in (("image", len(prompt.images)), ("video", len(prompt.videos))):
        named = [i for k, i in items if k == kind]
        if named != list(range(have)):
            raise UserError(f"the prompt holds {have} {kind}(s) but its media list names {kind} indexes {named}; "
                            f"expected {list(range(have))} (each {kind} once, in prompt order)")
    return items
