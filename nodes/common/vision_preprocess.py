"""Image and video preprocessing for the Qwen3-VL-style vision tower: smart resize, normalise, patchify.

Numerically this follows transformers' Qwen2-VL processors as they run without torchvision (images) and on CPU
(videos): images are resized with Pillow's bicubic filter on uint8 (Qwen2VLImageProcessorPil), video frames with
torch's antialiased uint8 bicubic (what torchvision's resize calls on CPU for Qwen2VLVideoProcessor).

Shapes: F frames, H/W pixels, C=3 channels, P patch size, TP temporal patch size, M spatial merge size,
(t, h, w) the patch grid. One patch row is a (C, TP, P, P) block flattened to C*TP*P*P values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...runtime.errors import UserError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # Qwen2VLImageProcessor class defaults
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class PreprocessArgs:
    """Resize limits (pixels per image or per video frame), normalisation and patch geometry."""

    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 3136  # released preprocessor_config.json values
    max_pixels: int = 12845056
    video_min_pixels: int = 128 * 32 * 32  # the Qwen3-Omni processor's per-frame override
    video_max_pixels: int = 768 * 32 * 32
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD
    video_mean: tuple[float, ...] = CLIP_MEAN
    video_std: tuple[float, ...] = CLIP_STD

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @classmethod
    def from_files(cls, image_cfg: dict[str, Any] | None, video_cfg: dict[str, Any] | None,
                   patch_size: int, temporal_patch_size: int, merge_size: int, **overrides: Any) -> PreprocessArgs:
        """Values from preprocessor_config.json / video_preprocessor_config.json (either may be None), then
        `overrides` (None values ignored). Video pixel limits come from the Qwen3-Omni processor unless overridden."""
        image_cfg, video_cfg = image_cfg or {}, video_cfg or {}
        size = image_cfg.get("size") or {}
        values: dict[str, Any] = dict(patch_size=patch_size, temporal_patch_size=temporal_patch_size,
                                      merge_size=merge_size)
        min_pixels = image_cfg.get("min_pixels", size.get("shortest_edge"))
        max_pixels = image_cfg.get("max_pixels", size.get("longest_edge"))
        if min_pixels is not None:
            values["min_pixels"] = int(min_pixels)
        if max_pixels is not None:
            values["max_pixels"] = int(max_pixels)
        if "image_mean" in image_cfg:
            values["image_mean"] = values["video_mean"] = tuple(float(v) for v in image_cfg["image_mean"])
        if "image_std" in image_cfg:
            values["image_std"] = values["video_std"] = tuple(float(v) for v in image_cfg["image_std"])
        if "image_mean" in video_cfg:
            values["video_mean"] = tuple(float(v) for v in video_cfg["image_mean"])
        if "image_std" in video_cfg:
            values["video_std"] = tuple(float(v) for v in video_cfg["image_std"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int,
                 what: str = "image") -> tuple[int, int]:
    """The (height, width) to resize to: multiples of `factor`, about the same aspect ratio, with
    min_pixels <= height*width <= max_pixels (up to rounding to the factor)."""
    if height <= 0 or width <= 0:
        raise UserError(f"{what} is empty ({height}x{width} pixels); give a picture at least 1x1 pixel")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise UserError(f"{what} is {height}x{width} pixels: its aspect ratio "
                        f"{max(height, width) / min(height, width):.1f} is above {MAX_ASPECT_RATIO}, the limit of "
                        "the Qwen2-VL smart_resize rule; crop or pad it to a less extreme shape")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_image_pil(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[H, W, 3] uint8 -> [height, width, 3] uint8 with Pillow's bicubic filter (as Qwen2VLImageProcessorPil)."""
    if tuple(pixels.shape[:2]) == (height, width):
        return pixels
    from PIL import Image as PILImage

    resized = PILImage.fromarray(pixels.cpu().contiguous().numpy()).resize((width, height), PILImage.BICUBIC)
    return torch.from_numpy(np.array(resized, dtype=np.uint8))


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[F, H, W, 3] uint8 -> [F, 3, height, width] uint8, antialiased bicubic (torchvision's CPU uint8 path)."""
    frames = frames.permute(0, 3, 1, 2)  # [F, 3, H, W], channels-last in memory
    if tuple(frames.shape[-2:]) == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bicubic", antialias=True, align_corners=False)


def normalize(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """[F, 3, H, W] uint8 -> float32 ((x / 255) - mean) / std per channel."""
    x = frames.to(torch.float32) * (1.0 / 255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


def patchify(frames: torch.Tensor, patch_size: int, temporal_patch_size: int,
             merge_size: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """[F, C, H, W] (F a multiple of TP, H and W multiples of P*M) -> patches [t*h*w, C*TP*P*P], grid (t, h, w).

    Rows run over (t, h/M, w/M, M, M): the M x M patches of one merge block are consecutive.
    """
    n_frames, channels, height, width = frames.shape
    P, TP, M = patch_size, temporal_patch_size, merge_size
    t, h, w = n_frames // TP, height // P, width // P
    x = frames.reshape(t, TP, channels, h // M, M, P, w // M, M, P)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # (t, h/M, w/M, M, M, C, TP, P, P)
    return x.reshape(t * h * w, channels * TP * P * P), (t, h, w)


def _check_pixels(pixels: torch.Tensor, dims: int, what: str) -> None:
    shape = "[F, H, W, 3]" if dims == 4 else "[H, W, 3]"
    if pixels.dim() != dims or pixels.shape[-1] != 3:
        raise UserError(f"{what} must be RGB pixels of shape {shape}, got shape {list(pixels.shape)}")
    if pixels.dtype != torch.uint8:
        raise UserError(f"{what} must hold uint8 pixels (0..255), got {pixels.dtype}")


def preprocess_image(pixels: torch.Tensor, args: PreprocessArgs,
                     what: str = "image") -> tuple[torch.Tensor, tuple[int, int, int]]:
    """[H, W, 3] uint8 -> patches [h*w, 3*TP*P*P] float32 and grid (1, h, w); the frame fills all TP slots."""
    _check_pixels(pixels, 3, what)
    height, width = smart_resize(pixels.shape[0], pixels.shape[1], args.factor, args.min_pixels, args.max_pixels,
                                 what)
    resized = resize_image_pil(pixels, height, width).permute(2, 0, 1)[None]  # [1, 3, H', W']
    x = normalize(resized, args.image_mean, args.image_std)
    x = x.expand(args.temporal_patch_size, -1, -1, -1)
    return patchify(x, args.patch_size, args.temporal_patch_size, args.merge_size)


def preprocess_video(frames: torch.Tensor, args: PreprocessArgs,
                     what: str = "video") -> tuple[torch.Tensor, tuple[int, int, int]]:
    """[F, H, W, 3] uint8 -> patches [t*h*w, 3*TP*P*P] float32 and grid (t, h, w), t = ceil(F / TP).

    A frame count that is not a multiple of TP is padded by repeating the last frame.
    """
    _check_pixels(frames, 4, what)
    if frames.shape[0] == 0:
        raise UserError(f"{what} has no frames; decode at least one frame")
    height, width = smart_resize(frames.shape[1], frames.shape[2], args.factor, args.video_min_pixels,
                                 args.video_max_pixels, what)
    x = normalize(resize_frames(frames, height, width), args.video_mean, args.video_std)
    if pad := -x.shape[0] % args.temporal_patch_size:
        x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)])
    return patchify(x, args.patch_size, args.temporal_patch_size, args.merge_size)
