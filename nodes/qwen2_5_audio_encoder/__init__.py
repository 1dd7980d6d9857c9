"""qwen2_5_audio_encoder: Qwen2.5-Omni's Whisper-style audio encoder (log-mel features -> audio token embeddings)."""
