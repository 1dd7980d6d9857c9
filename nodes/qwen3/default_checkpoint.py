"""The checkpoint Qwen3-Omni node kinds run with when none is given (`Node.default_checkpoint`)."""
from __future__ import annotations

from pathlib import Path


def tiny_random_checkpoint() -> Path:
    """The tiny random Qwen3-Omni checkpoint (seed 0), built once into the user cache."""
    from .checkpoint_writer import default_checkpoint

    return default_checkpoint()
