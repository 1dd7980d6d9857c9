"""audio_encoder: AuT, Qwen3-Omni's audio encoder (log-mel features -> audio token embeddings)."""
