"""qwen2_5_vision_encoder: Qwen2.5-Omni's Qwen2.5-VL vision tower (images and video frames -> merged embeddings)."""
