"""qwen2_5_interleaver: placeholder expansion, embedding scatter and TMRoPE positions for the Qwen2.5-Omni Thinker."""
