"""Seeded random Qwen3-Omni checkpoints in the released on-disk format (configs, key table, tokenizer files).

The public entry points are in `omnigraph.runtime.checkpoint_writer`.
"""
