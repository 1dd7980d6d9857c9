"""Every tensor of a Qwen3-Omni checkpoint, in stage order: the union of the stages' own key tables.

Each stage's `weights.key_table(config)` (the one its loader reads) says its on-disk keys, shapes and how the
tiny-checkpoint writer draws them; a tensor two stages read is written by one (the other borrows it).
"""
from __future__ import annotations

from typing import Any

from ..common.key_table import Init, KeyTable

Entry = tuple[str, tuple[int, ...], Init]


def stage_tables(config: dict[str, Any]) -> list[KeyTable]:
    """The key tables of the stages a checkpoint of `config` holds (no talker without audio output)."""
    from ..audio_encoder.weights import key_table as audio_encoder
    from ..code2wav.weights import key_table as code2wav
    from ..code_predictor.weights import key_table as code_predictor
    from ..talker.weights import key_table as talker
    from ..thinker.weights import key_table as thinker
    from ..vision_encoder.weights import key_table as vision_encoder

    stages = [audio_encoder, vision_encoder, thinker]
    if config.get("enable_audio_output", True):
        stages += [talker, code_predictor, code2wav]
    return [stage(config) for stage in stages]


def checkpoint_entries(config: dict[str, Any]) -> list[Entry]:
    """(key, shape, init) for every tensor of the checkpoint, in stage order."""
    entries = [entry for table in stage_tables(config) for entry in table.entries()]
    keys = [key for key, _, _ in entries]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"tensors written by two key tables (one must borrow them): {twice[:5]}")
    return entries


def expected_shapes(config: dict[str, Any], prefix: str) -> dict[str, tuple[int, ...]]:
    """Shapes of every tensor under `prefix`, keyed without it (the form `Checkpoint.load` takes)."""
    return {k[len(prefix):]: s for k, s, _ in checkpoint_entries(config) if k.startswith(prefix)}
