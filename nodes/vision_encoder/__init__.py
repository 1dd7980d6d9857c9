"""vision_encoder: Qwen3-Omni vision tower (Qwen3-VL style) with image and video preprocessing."""
