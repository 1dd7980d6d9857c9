"""qwen2_5_thinker: the dense Qwen2.5-Omni Thinker, generating token ids and the states its Talker reads."""
