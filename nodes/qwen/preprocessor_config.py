"""preprocessor_config.json of a Qwen Omni checkpoint: the Whisper feature extractor and the Qwen2-VL image
processor, as the releases write them; the families differ in processor class, patch size and pixel statistics."""
from __future__ import annotations

from typing import Any


def preprocessor_config(processor_class: str, patch_size: int, image_mean: list[float],
                        image_std: list[float]) -> dict[str, Any]:
    return {
        "processor_class": processor_class,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": 128, "sampling_rate": 16000, "hop_length": 160, "n_fft": 400, "chunk_length": 300,
        "n_samples": 4_800_000, "nb_max_frames": 30000, "padding_side": "right", "padding_value": 0.0,
        "dither": 0.0, "return_attention_mask": True,
        "image_processor_type": "Qwen2VLImageProcessor",
        "patch_size": patch_size, "temporal_patch_size": 2, "merge_size": 2,
        "min_pixels": 3136, "max_pixels": 12845056,
        "do_resize": True, "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "do_convert_rgb": True,
        "image_mean": image_mean, "image_std": image_std,
    }
