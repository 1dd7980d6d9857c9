"""What the Qwen-Omni families share (payloads, the Qwen BPE tokenizer and its files). Not a node kind."""
