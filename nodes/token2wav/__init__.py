"""Qwen2.5-Omni token2wav: codec ids -> mel (DiT flow matching) -> 24 kHz waveform (BigVGAN)."""
