"""What the Qwen2.5-Omni node kinds declare to the runtime: the checkpoints they read (config.json
`model_type`; a checkpoint of another family is refused before any tensor is read) and the one a run uses when
none is given (tiny25, seed 0, built once into the user cache)."""
from __future__ import annotations

from pathlib import Path

MODEL_TYPES = ("qwen2_5_omni",)


def tiny_random_checkpoint() -> Path:
    """The tiny random Qwen2.5-Omni checkpoint (seed 0), built once into the user cache."""
    from .checkpoint_writer import default_checkpoint

    return default_checkpoint()
