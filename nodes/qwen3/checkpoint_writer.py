"""Seeded random Qwen3-Omni checkpoints in the released on-disk format (loadable by transformers).

    write_checkpoint("ckpt/tiny", "tiny", seed=0)    # ~80 MB float32, one model.safetensors
    write_checkpoint("ckpt/small", "small")          # ~0.44 GB bfloat16, 4 shards + model.safetensors.index.json
    default_checkpoint()                             # the tiny one, built once into the user cache

A folder holds config.json, generation_config.json, preprocessor_config.json, the tokenizer files (real Qwen
vocabulary and special-token ids) and the weights of every stage: thinker (audio_tower, visual, model, lm_head),
talker (with code_predictor) and code2wav, as the stages' key tables list them (checkpoint_keys.py). Each
tensor is drawn from its own generator, seeded by (seed, key), so the same seed gives the same bytes and tensors
do not depend on each other's order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...runtime.cache import cache_root
from ...runtime.checkpoint_config import ConfigSection
from ..common.checkpoint_files import cached_checkpoint, write_json, write_weights
from ..qwen.tokenizer_files import write_tokenizer_files
from .checkpoint_configs import DEFAULT_DTYPE, PRESETS, generation_config, preprocessor_config, preset_config
from .checkpoint_keys import checkpoint_entries

FORMAT_VERSION = 1  # bump when the written tensors or files change, so cached defaults are rebuilt
SHARD_BYTES = {"tiny": None, "small": 160 * 2**20}  # None: a single model.safetensors


def write_checkpoint(folder: str | Path, preset: str = "tiny", seed: int = 0, *, dtype: str | None = None,
                     shard_bytes: int | None | str = "preset",
                     overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write a seeded random checkpoint of `preset` ("tiny" or "small") into `folder` (created if needed).

    dtype: "float32" or "bfloat16" (default: float32 for tiny, bfloat16 for small). shard_bytes: the most bytes
    per shard (None: one file). overrides: sub-config updates by dotted path, as in `preset_config`.
    """
    import torch

    if preset not in PRESETS:
        raise ValueError(f"unknown checkpoint preset '{preset}' (choose from {', '.join(PRESETS)})")
    dtype = dtype or DEFAULT_DTYPE[preset]
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    if shard_bytes == "preset":
        shard_bytes = SHARD_BYTES[preset]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = preset_config(preset, dtype, overrides)
    entries = checkpoint_entries(ConfigSection(config, folder / "config.json"))  # errors name the key

    write_weights(folder, entries, seed, torch_dtype, shard_bytes)
    write_json(folder / "config.json", config)
    write_json(folder / "generation_config.json", generation_config())
    write_json(folder / "preprocessor_config.json", preprocessor_config())
    write_tokenizer_files(folder)
    return folder


def default_checkpoint(preset: str = "tiny", seed: int = 0) -> Path:
    """The path of a cached checkpoint (by default the tiny, seed 0 one), written on first use."""
    return cached_checkpoint(cache_root() / f"{preset}-v{FORMAT_VERSION}-seed{seed}",
                             lambda folder: write_checkpoint(folder, preset, seed))
