"""Qwen3-Omni Talker: codebook 0 of each codec frame from the prompt and the reply text."""
