"""Qwen3-Omni code predictor (MTP): codebooks 1..G-1 of a frame from the Talker hidden state and code 0."""
