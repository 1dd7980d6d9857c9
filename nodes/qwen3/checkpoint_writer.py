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

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...runtime.cache import cache_root
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
    from safetensors.torch import save_file

    if preset not in PRESETS:
        raise ValueError(f"unknown checkpoint preset '{preset}' (choose from {', '.join(PRESETS)})")
    dtype = dtype or DEFAULT_DTYPE[preset]
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    if shard_bytes == "preset":
        shard_bytes = SHARD_BYTES[preset]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.glob("model*.safetensors"), folder / "model.safetensors.index.json"]:
        stale.unlink(missing_ok=True)  # weights of an earlier write would shadow or mix with these
    config = preset_config(preset, dtype, overrides)
    entries = checkpoint_entries(config)

    item = torch.empty((), dtype=torch_dtype).element_size()
    shards: list[list[tuple[str, tuple[int, ...], tuple]]] = [[]]
    used = 0
    for key, shape, init in entries:
        size = math.prod(shape) * item
        if shard_bytes is not None and shards[-1] and used + size > shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append((key, shape, init))
        used += size
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    weight_map, total = {}, 0
    for name, shard in zip(names, shards):
        tensors = {key: _draw(key, shape, init, seed).to(torch_dtype) for key, shape, init in shard}
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        for key, tensor in tensors.items():
            weight_map[key] = name
            total += tensor.numel() * tensor.element_size()
    if len(names) > 1:
        _write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total},
                                                              "weight_map": weight_map})
    _write_json(folder / "config.json", config)
    _write_json(folder / "generation_config.json", generation_config())
    _write_json(folder / "preprocessor_config.json", preprocessor_config())
    write_tokenizer_files(folder)
    return folder


def _draw(key: str, shape: tuple[int, ...], init: tuple, seed: int):
    """The tensor of one key: normal(mean, std) from a generator seeded by (seed, key)."""
    import torch

    kind, mean, std = init
    if kind != "normal":
        raise ValueError(f"unknown init '{kind}' for {key}")
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    tensor = torch.randn(shape, generator=generator, dtype=torch.float32)
    return tensor.mul_(std).add_(mean)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def default_checkpoint(preset: str = "tiny", seed: int = 0) -> Path:
    """The path of a cached checkpoint (by default the tiny, seed 0 one), written on first use.

    The folder is built under a temporary name next to its final place and renamed into place, so a reader
    never sees a half-written checkpoint and concurrent first uses are safe (one rename wins).
    """
    root = cache_root()
    final = root / f"{preset}-v{FORMAT_VERSION}-seed{seed}"
    if (final / "config.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=root))
    try:
        write_checkpoint(tmp, preset, seed)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").is_file():  # lost the race to a complete copy: use it; else fail
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
