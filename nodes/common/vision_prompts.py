"""What the vision nodes share around their towers: the resize/normalisation config, the prompt's images and
videos gathered into one patch batch, and packed forwards split back per prompt.

Shapes: N patches of a prompt, K = N / M^2 merged tokens, Do output size, (t, h, w) an item's patch grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Sequence

from pydantic import Field, StrictFloat, model_validator

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.node import NodeConfig

if TYPE_CHECKING:  # the prompt payload of the Qwen families; common/ needs only its media fields
    from ..qwen.payloads import PromptTokens

Triple = Optional[tuple[StrictFloat, StrictFloat, StrictFloat]]  # written as a YAML list
Pixels = Optional[Annotated[int, Field(ge=1, le=1 << 28)]]


class VisionConfig(NodeConfig):
    """A vision node's config; a kind states its own video limits' defaults in their descriptions."""

    dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                    "CUDA, float32 on CPU).")
    min_pixels: Pixels = Field(
        None, description="Smallest resized image area (default: preprocessor_config.json, else 3136).")
    max_pixels: Pixels = Field(
        None, description="Largest resized image area (default: preprocessor_config.json, else 12845056).")
    video_min_pixels: Pixels = Field(None, description="Smallest resized video frame area.")
    video_max_pixels: Pixels = Field(None, description="Largest resized video frame area.")
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


def preprocess_args(checkpoint: Any, model_args: Any, config: VisionConfig, video_min_pixels: int | None = None,
                    video_max_pixels: int | None = None) -> Any:
    """The PreprocessArgs of a tower: the checkpoint's preprocessor files, then `video_*_pixels` (the family's
    processor defaults; None keeps PreprocessArgs'), then the node config."""
    from .vision_preprocess import PreprocessArgs

    a, c = model_args, config
    return PreprocessArgs.from_files(
        checkpoint.json_file("preprocessor_config.json"), checkpoint.json_file("video_preprocessor_config.json"),
        a.patch_size, a.temporal_patch_size, a.spatial_merge_size,
        min_pixels=c.min_pixels, max_pixels=c.max_pixels,
        video_min_pixels=c.video_min_pixels or video_min_pixels,
        video_max_pixels=c.video_max_pixels or video_max_pixels,
        image_mean=c.image_mean, image_std=c.image_std, video_mean=c.image_mean, video_std=c.image_std)


@dataclass(frozen=True)
class PromptPatches:
    """A prompt's images and videos, in prompt order, as one patch batch."""

    pixels: Any                            # [N, C*TP*P*P] float32, merge-block order
    grids: tuple[tuple[int, int, int], ...]
    kinds: tuple[str, ...]                 # "image" or "video" per item
    seconds_per_grid: tuple[float, ...]    # 0 for images


def prompt_patches(prompt: PromptTokens, prep: Any) -> PromptPatches | None:
    """Every image and video of `prompt` preprocessed with `prep` (PreprocessArgs); None when it has none."""
    import torch

    from .vision_preprocess import preprocess_image, preprocess_video

    items = visual_items(prompt)
    if not items:
        return None
    patches, grids, seconds = [], [], []
    for kind, index in items:
        item = prompt.images[index] if kind == "image" else prompt.videos[index]
        what = f"{kind} {index} of the prompt" + (f" (from '{item.source}')" if item.source else "")
        if kind == "image":
            rows, grid = preprocess_image(item.pixels, prep, what)
            seconds.append(0.0)
        else:
            if not item.fps > 0:
                raise UserError(f"{what} has fps {item.fps}; the fps frames were sampled at must be > 0")
            rows, grid = preprocess_video(item.frames, prep, what)
            seconds.append(prep.temporal_patch_size / item.fps)
        patches.append(rows)
        grids.append(grid)
    return PromptPatches(torch.cat(patches), tuple(grids), tuple(k for k, _ in items), tuple(seconds))


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


def encode_packed(prompts: Sequence[tuple[Any, tuple]], forward: Callable[[Any, list], Sequence[Any]],
                  merge: int) -> list[tuple[Any, ...]]:
    """Several prompts' (patches [N_i, ...], grids) in one packed `forward(pixels, grids)` -> tensors [K, Do]
    (attention never crosses an item, so each prompt's rows are those it gets alone), split back per prompt:
    -> one tuple of [K_i, Do] tensors per prompt, each with its own storage."""
    import torch

    pixels = torch.cat([p for p, _ in prompts])
    outputs = forward(pixels, [g for _, grids in prompts for g in grids])
    tokens = [p.shape[0] // merge ** 2 for p, _ in prompts]
    per_output = [t.split(tokens) for t in outputs]
    return [tuple(t.clone() for t in parts) for parts in zip(*per_output)]
