"""Qwen3-Omni: what its node kinds share (checkpoint presets and the tiny-checkpoint writer). Not a node kind."""
