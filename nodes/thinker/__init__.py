"""thinker: the Qwen3-Omni Thinker text decoder (MoE), generating token ids from a ThinkerPrompt."""
