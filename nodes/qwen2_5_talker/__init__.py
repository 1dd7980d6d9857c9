"""Qwen2.5-Omni Talker: codec ids (one codebook) from the Thinker's states, on the common decoder."""
