"""mrope_interleaver: placeholder expansion, embedding scatter and TM-RoPE positions for the Thinker."""
