"""mel_frontend: the prompt's audio clips as Whisper-style log-mel features (Qwen3-Omni's audio input)."""
