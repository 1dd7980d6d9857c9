"""Writes video_processor_reference.pt: checksums of transformers' Qwen2VLVideoProcessor output (needs torchvision).

    python tests/nodes/vision_encoder/make_vision_fixture.py

The fixture lets test_vision_preprocess.py check the video path where torchvision is not installed.
"""
from __future__ import annotations

import torch
from test_vision_preprocess import FIXTURE, QWEN3_OMNI_VIDEO_SIZE, pattern_video, pixel_levels
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

VIDEO_SHAPE = (5, 65, 97)  # frames, height, width: an odd frame count and odd sizes


def main() -> None:
    processor = Qwen2VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
    out = processor(videos=[pattern_video(*VIDEO_SHAPE).numpy()], size=QWEN3_OMNI_VIDEO_SIZE, return_tensors="pt",
                    input_data_format="channels_last", cap_pixels_per_frame=False)
    patches = out["pixel_values_videos"]
    rows = torch.tensor([1, 1000, patches.shape[0] - 1])
    levels = pixel_levels(patches)
    back = pixel_levels(patches + 1e-3) - levels  # every value is an exact uint8 level: a tiny shift rounds back
    assert 0 <= levels.min() and levels.max() <= 255 and not back.any()
    torch.save({"video_shape": torch.tensor(VIDEO_SHAPE), "grid": out["video_grid_thw"][0],
                "row_sums": levels.sum(1), "col_sums": levels.sum(0),
                "rows": rows, "row_values": patches[rows].clone()}, FIXTURE)
    print(f"wrote {FIXTURE}: grid {out['video_grid_thw'][0].tolist()}, {patches.shape[0]} patches")


if __name__ == "__main__":
    main()
