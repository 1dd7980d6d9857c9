"""Qwen2.5-Omni: what its node kinds share (payloads, checkpoint presets and writer). Not a node kind."""
