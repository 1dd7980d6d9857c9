"""code2wav: Qwen3-Omni's causal ConvNet vocoder (codec frames -> 24 kHz waveform), whole or streamed."""
