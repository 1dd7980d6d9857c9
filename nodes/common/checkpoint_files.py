"""Writing seeded random weights in the Hugging Face layout, shared by every family's checkpoint writer.

    write_weights(folder, entries, seed=0, dtype=torch.bfloat16, shard_bytes=160 * 2**20)

`entries` are (on-disk key, shape, init) triples, as `KeyTable.entries()` gives them. Each tensor is drawn
from its own generator, seeded by (seed, key), so the same seed gives the same bytes and tensors do not depend
on each other's order. Up to `shard_bytes` per shard (None: one model.safetensors), with
model.safetensors.index.json when there are several. `cached_checkpoint` builds a folder once, safely.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .key_table import Init

if TYPE_CHECKING:
    import torch

Entry = tuple[str, tuple[int, ...], Init]


def draw(key: str, shape: tuple[int, ...], init: Init, seed: int) -> torch.Tensor:
    """The float32 tensor of one key: normal(mean, std) from a generator seeded by (seed, key)."""
    import torch

    kind, mean, std = init
    if kind != "normal":
        raise ValueError(f"unknown init '{kind}' for {key}")
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    tensor = torch.randn(shape, generator=generator, dtype=torch.float32)
    return tensor.mul_(std).add_(mean)


def write_weights(folder: Path, entries: Iterable[Entry], seed: int, dtype: torch.dtype,
                  shard_bytes: int | None, float32_prefixes: tuple[str, ...] = ()) -> None:
    """Draw and write every entry into `folder`, replacing the weight files of an earlier write.

    Keys under `float32_prefixes` stay float32 whatever `dtype` (as a release stores some stages).
    """
    import torch
    from safetensors.torch import save_file

    for stale in [*folder.glob("model*.safetensors"), folder / "model.safetensors.index.json"]:
        stale.unlink(missing_ok=True)  # weights of an earlier write would shadow or mix with these
    dtype_of = lambda key: torch.float32 if key.startswith(float32_prefixes) else dtype  # noqa: E731
    shards: list[list[Entry]] = [[]]
    used = 0
    for key, shape, init in entries:
        size = math.prod(shape) * torch.empty((), dtype=dtype_of(key)).element_size()
        if shard_bytes is not None and shards[-1] and used + size > shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append((key, shape, init))
        used += size
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    weight_map, total = {}, 0
    for name, shard in zip(names, shards):
        tensors = {key: draw(key, shape, init, seed).to(dtype_of(key)) for key, shape, init in shard}
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        for key, tensor in tensors.items():
            weight_map[key] = name
            total += tensor.numel() * tensor.element_size()
    if len(names) > 1:
        write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total},
                                                             "weight_map": weight_map})


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def cached_checkpoint(final: Path, write: Callable[[Path], Any]) -> Path:
    """`final`, written by `write(folder)` on first use (a folder with a config.json counts as built).

    The folder is built under a temporary name next to its final place and renamed into place, so a reader
    never sees a half-written checkpoint and concurrent first uses are safe (one rename wins).
    """
    if (final / "config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "config.json").is_file():  # lost the race to a complete copy: use it; else fail
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
