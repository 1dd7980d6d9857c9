"""Vision preprocessing parity: smart resize, bicubic resampling, normalisation and patch order.

Images are compared with transformers' Qwen2VLImageProcessorPil (the class `Qwen2VLImageProcessor` resolves to
without torchvision). Videos are compared with Qwen2VLVideoProcessor when torchvision is installed, and always
with checksums it produced (video_processor_reference.pt, written by make_vision_fixture.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omnigraph.nodes.common.vision_preprocess import (PreprocessArgs, preprocess_image, preprocess_video,
                                                       smart_resize)
from omnigraph.runtime.errors import UserError

QWEN3_OMNI_VIDEO_SIZE = {"shortest_edge": 128 * 32 * 32, "longest_edge": 768 * 32 * 32}
FIXTURE = Path(__file__).with_name("video_processor_reference.pt")


def pattern_video(frames: int, height: int, width: int) -> torch.Tensor:
    """Deterministic frames [F, H, W, 3] uint8 with smooth and high-frequency content (no RNG involved)."""
    f = torch.arange(frames).view(-1, 1, 1, 1)
    y = torch.arange(height).view(1, -1, 1, 1)
    x = torch.arange(width).view(1, 1, -1, 1)
    c = torch.arange(3).view(1, 1, 1, -1)
    return ((x * 37 + y * 101 + f * 53 + c * 71 + (x * y % 13) * 17 + (x * x + 3 * y) % 7 * 29) % 256).to(torch.uint8)


def pixel_levels(patches: torch.Tensor, args: PreprocessArgs = PreprocessArgs()) -> torch.Tensor:
    """Normalised video patches [N, 3*2*16*16] back to the uint8 levels they came from, as int64."""
    mean = torch.tensor(args.video_mean, dtype=torch.float64).repeat_interleave(2 * 16 * 16)
    std = torch.tensor(args.video_std, dtype=torch.float64).repeat_interleave(2 * 16 * 16)
    return ((patches.double() * std + mean) * 255).round().long()


def random_image(height: int, width: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def image_processor(args: PreprocessArgs):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(patch_size=args.patch_size, temporal_patch_size=args.temporal_patch_size,
                                    merge_size=args.merge_size, min_pixels=args.min_pixels,
                                    max_pixels=args.max_pixels, image_mean=list(args.image_mean),
                                    image_std=list(args.image_std))


@pytest.mark.parametrize("height,width", [(65, 97), (300, 200), (40, 900), (1, 1), (7, 5), (2000, 90), (64, 96)])
def test_image_matches_qwen2vl_image_processor(height, width):
    args = PreprocessArgs()
    image = random_image(height, width, seed=height * 1000 + width)
    ref = image_processor(args)(images=[image.numpy()], return_tensors="pt", input_data_format="channels_last")
    patches, grid = preprocess_image(image, args)
    assert [list(grid)] == ref["image_grid_thw"].tolist()
    torch.testing.assert_close(patches, ref["pixel_values"], atol=1e-5, rtol=1e-5)


def test_image_downscaled_to_max_pixels_with_checkpoint_style_values():
    # A small max_pixels forces the downscaling branch; 0.5/0.5 normalisation as Qwen3-VL checkpoints use.
    args = PreprocessArgs(min_pixels=32 * 32, max_pixels=32 * 32 * 30, image_mean=(0.5, 0.5, 0.5),
                          image_std=(0.5, 0.5, 0.5))
    image = random_image(300, 200, seed=3)
    ref = image_processor(args)(images=[image.numpy()], return_tensors="pt", input_data_format="channels_last")
    patches, grid = preprocess_image(image, args)
    assert grid[1] * grid[2] * 16 * 16 <= args.max_pixels
    assert [list(grid)] == ref["image_grid_thw"].tolist()
    torch.testing.assert_close(patches, ref["pixel_values"], atol=1e-5, rtol=1e-5)


def test_image_patch_layout_duplicates_the_frame_over_the_temporal_patch():
    patches, (t, h, w) = preprocess_image(random_image(64, 96, seed=1), PreprocessArgs())
    v = patches.view(t * h * w, 3, 2, 16, 16)
    assert torch.equal(v[:, :, 0], v[:, :, 1])


def test_video_matches_qwen2vl_video_processor():
    pytest.importorskip("torchvision")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    processor = Qwen2VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
    for frames, height, width in [(5, 65, 97), (4, 480, 640), (1, 40, 900), (3, 1080, 1920)]:
        video = pattern_video(frames, height, width)
        ref = processor(videos=[video.numpy()], size=QWEN3_OMNI_VIDEO_SIZE, return_tensors="pt",
                        input_data_format="channels_last", cap_pixels_per_frame=False)
        patches, grid = preprocess_video(video, PreprocessArgs())
        assert [list(grid)] == ref["video_grid_thw"].tolist()
        torch.testing.assert_close(patches, ref["pixel_values_videos"], atol=1e-5, rtol=1e-5)


def test_video_matches_stored_video_processor_checksums():
    """5 frames (odd: the last is repeated) of 65x97 pixels, upscaled to the 131072-pixel frame minimum."""
    ref = torch.load(FIXTURE, weights_only=True)
    video = pattern_video(*ref["video_shape"].tolist())
    patches, grid = preprocess_video(video, PreprocessArgs())
    assert list(grid) == ref["grid"].tolist() == [3, 20, 28]
    levels = pixel_levels(patches)  # exact integer checksums: one resampled pixel off by 1 shows
    assert torch.equal(levels.sum(1), ref["row_sums"]) and torch.equal(levels.sum(0), ref["col_sums"])
    torch.testing.assert_close(patches[ref["rows"]], ref["row_values"], atol=1e-5, rtol=1e-5)


def test_video_pads_odd_frame_counts_with_the_last_frame():
    args = PreprocessArgs(video_min_pixels=32 * 32, video_max_pixels=64 * 64)
    video = pattern_video(3, 64, 64)
    patches, (t, h, w) = preprocess_video(video, args)
    assert (t, h, w) == (2, 4, 4)
    v = patches.view(t, h * w, 3, 2, 16, 16)
    assert torch.equal(v[1, :, :, 0], v[1, :, :, 1])  # frame 2 and its repeat
    assert not torch.equal(v[0, :, :, 0], v[0, :, :, 1])


def test_smart_resize_rules():
    assert smart_resize(65, 97, 32, 3136, 12845056) == (64, 96)
    assert smart_resize(1, 1, 32, 3136, 12845056) == (64, 64)  # small images scale up to min_pixels
    h, w = smart_resize(4000, 6000, 32, 3136, 1000 * 1000)
    assert h % 32 == w % 32 == 0 and h * w <= 1000 * 1000
    with pytest.raises(UserError, match="aspect ratio .* above 200"):
        smart_resize(10, 2011, 32, 3136, 12845056)
    with pytest.raises(UserError, match="empty"):
        smart_resize(0, 10, 32, 3136, 12845056)


def test_bad_pixels_give_clear_errors():
    args = PreprocessArgs()
    with pytest.raises(UserError, match=r"image 2 .* empty"):
        preprocess_image(torch.zeros(0, 5, 3, dtype=torch.uint8), args, "image 2")
    with pytest.raises(UserError, match="uint8"):
        preprocess_image(torch.zeros(8, 8, 3), args)
    with pytest.raises(UserError, match=r"\[H, W, 3\]"):
        preprocess_image(torch.zeros(8, 8, dtype=torch.uint8), args)
    with pytest.raises(UserError, match="no frames"):
        preprocess_video(torch.zeros(0, 8, 8, 3, dtype=torch.uint8), args)
    with pytest.raises(UserError, match="aspect ratio"):
        preprocess_video(torch.zeros(2, 1, 300, 3, dtype=torch.uint8), args)


def test_preprocess_args_from_checkpoint_files():
    image_cfg = {"min_pixels": 1024, "max_pixels": 65536, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5] * 3}
    args = PreprocessArgs.from_files(image_cfg, None, 16, 2, 2)
    assert (args.min_pixels, args.max_pixels) == (1024, 65536)
    assert args.image_mean == args.video_mean == (0.5, 0.5, 0.5)
    assert (args.video_min_pixels, args.video_max_pixels) == (131072, 786432)
    args = PreprocessArgs.from_files({"size": {"shortest_edge": 2048, "longest_edge": 4096}},
                                     {"image_mean": [0.1, 0.2, 0.3]}, 16, 2, 2, max_pixels=8192, min_pixels=None)
    assert (args.min_pixels, args.max_pixels) == (2048, 8192)
    assert args.image_mean == (0.48145466, 0.4578275, 0.40821073) and args.video_mean == (0.1, 0.2, 0.3)
    assert PreprocessArgs.from_files(None, None, 16, 2, 2) == PreprocessArgs()
