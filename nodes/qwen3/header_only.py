"""Header-only checkpoints: real config, tokenizer and safetensors headers, tensor bytes left as sparse holes.

For checks that read only headers (runtime/checkpoint_check.py): a checkpoint the size of the released 30B
one (28,010 tensors in 15 shards) is written in a second and takes no disk space. Its weights read as zeros.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from ..qwen.tokenizer_files import write_tokenizer_files
from .checkpoint_configs import generation_config, preprocessor_config
from .checkpoint_keys import checkpoint_entries

ITEM_BYTES = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4}


def write_header_only(folder: str | Path, config: dict[str, Any], shards: int = 1, dtype: str = "F32",
                      tensors: dict[str, tuple[str, tuple[int, ...]]] | None = None,
                      side_files: Path | None = None) -> Path:
    """Write a checkpoint of `config` whose shards hold headers only. `tensors` (key -> (dtype, shape)) replaces
    the tensors derived from the config (edit a copy of `entries(config, dtype)` to drop or reshape some).
    `side_files`: a header-only checkpoint whose tokenizer and other side files are linked, not rewritten."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = entries(config, dtype) if tensors is None else tensors
    keys = list(tensors)
    per_shard = math.ceil(len(keys) / shards)
    groups = [keys[i:i + per_shard] for i in range(0, len(keys), per_shard)]
    names = (["model.safetensors"] if len(groups) == 1 else
             [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))])
    for name, group in zip(names, groups):
        _write_shard(folder / name, {k: tensors[k] for k in group})
    if len(names) > 1:
        weight_map = {key: name for name, group in zip(names, groups) for key in group}
        _write_json(folder / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map})
    _write_json(folder / "config.json", config)
    if side_files is not None:
        for source in side_files.iterdir():
            if source.name != "config.json" and not source.name.startswith("model"):
                (folder / source.name).symlink_to(source.resolve())
        return folder
    _write_json(folder / "generation_config.json", generation_config())
    _write_json(folder / "preprocessor_config.json", preprocessor_config())
    write_tokenizer_files(folder)
    return folder


def entries(config: dict[str, Any], dtype: str = "F32") -> dict[str, tuple[str, tuple[int, ...]]]:
    """key -> (dtype, shape) of every tensor of a checkpoint of `config`."""
    return {key: (dtype, shape) for key, shape, _ in checkpoint_entries(config)}


def _write_shard(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for key, (dtype, shape) in tensors.items():
        size = math.prod(shape) * ITEM_BYTES[dtype]
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)  # a sparse hole where the tensor bytes would be


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
