"""Hugging Face checkpoint folders: config, tokenizer files and safetensors weights, read one prefix at a time.

Only the shards holding a prefix are opened, memory-mapped by safetensors; nothing is unpickled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .checkpoint_config import ConfigSection
from .errors import CheckpointError
from .safetensors_header import FLOAT_DTYPES, TensorInfo, read_header

if TYPE_CHECKING:
    import torch

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
__all__ = ["Checkpoint", "CheckpointError"]


@dataclass
class Checkpoint:
    """A checkpoint folder. `config` is the parsed config.json; `shard_of` maps each tensor key to its file."""

    path: Path
    config: dict[str, Any]
    shard_of: dict[str, str] = field(repr=False)
    read: set[str] = field(default_factory=set, repr=False, compare=False)  # keys loaded so far (observability)
    _headers: dict[str, dict[str, TensorInfo]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise CheckpointError(_not_a_folder(path))
        config = ConfigSection(_read_json(path / "config.json", "the model config"), path / "config.json")
        index = path / INDEX_FILE
        if index.is_file():
            weight_map = _read_json(index, "the shard index").get("weight_map")
            if not isinstance(weight_map, dict):
                raise CheckpointError(f"{index}: no 'weight_map' mapping tensor names to shard files")
            shard_of = dict(weight_map)
        elif (path / SINGLE_FILE).is_file():
            shard_of = {key: SINGLE_FILE for key in read_header(path / SINGLE_FILE)}
        else:
            raise CheckpointError(f"'{path}' has neither {SINGLE_FILE} nor {INDEX_FILE}")
        for shard in sorted(set(shard_of.values())):
            if not (path / shard).is_file():
                raise CheckpointError(f"{index}: shard '{shard}' is listed but missing from '{path}'")
        return cls(path, config, shard_of)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.shard_of if k.startswith(prefix))

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.shard_of)

    def file(self, name: str) -> Path | None:
        """A side file of the checkpoint (tokenizer, preprocessor config), if present."""
        path = self.path / name
        return path if path.is_file() else None

    def json_file(self, name: str) -> dict[str, Any] | None:
        path = self.file(name)
        return None if path is None else _read_json(path, name)

    def section(self, key: str, missing: str) -> dict[str, Any]:
        """The sub-config `key` of config.json; `missing` says what its absence means and what to do."""
        value = self.config.get(key)
        if not isinstance(value, dict):
            raise CheckpointError(f"{self.path / 'config.json'} has no '{key}': {missing}")
        return value

    def header(self, shard: str) -> dict[str, TensorInfo]:
        """dtype and shape of every tensor of a shard, from its header (no tensor data is read)."""
        if shard not in self._headers:
            self._headers[shard] = read_header(self.path / shard)
        return self._headers[shard]

    def match(self, prefix: str, expected: Mapping[str, tuple[int, ...]],
              optional: Iterable[str] = ()) -> tuple[list[str], dict[str, str]]:
        """(problems, short key -> full key of the tensors that fit) for the tensors under `prefix` against
        `expected` shapes (keys without prefix), from the shard headers. Every weight must be floating point."""
        present = {k[len(prefix):]: k for k in self.keys(prefix)}
        optional = set(optional)
        problems = []
        missing = sorted(set(expected) - set(present) - optional)
        unexpected = sorted(set(present) - set(expected))
        if missing:
            problems.append(f"missing {len(missing)} tensor(s): " + _some(prefix + m for m in missing))
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} tensor(s): " + _some(prefix + u for u in unexpected))
        fits = {}
        for short in sorted(set(expected) & set(present)):
            key = present[short]
            shard = self.shard_of[key]
            info = self.header(shard).get(key)
            want = tuple(expected[short])
            if info is None:
                problems.append(f"'{key}' is listed in {INDEX_FILE} under {shard}, which does not hold it")
            elif info.shape != want:
                problems.append(f"'{key}' in {shard} has shape {list(info.shape)}, expected {list(want)}")
            elif info.dtype not in FLOAT_DTYPES:
                problems.append(f"'{key}' in {shard} has dtype {info.dtype}, expected a floating-point dtype")
            else:
                fits[short] = key
        return problems, fits

    def mismatch_error(self, prefix: str, problems: list[str]) -> CheckpointError:
        return CheckpointError(f"checkpoint '{self.path}' does not match the model config under '{prefix}':\n  "
                               + "\n  ".join(problems) + "\n(is config.json from the same model as the weights?)")

    def load(self, prefix: str, expected: Mapping[str, tuple[int, ...]], dtype: torch.dtype | None = None,
             device: str = "cpu", optional: Iterable[str] = ()) -> dict[str, torch.Tensor]:
        """Tensors under `prefix`, keyed without it, checked against `expected` shapes (keys without prefix).

        Every missing, unexpected or mis-shaped tensor is reported at once, with both shapes and the file.
        Keys in `optional` may be absent. Floating tensors are cast to `dtype`.
        """
        from safetensors import safe_open

        problems, fits = self.match(prefix, expected, optional)
        if problems:
            raise self.mismatch_error(prefix, problems)
        by_shard: dict[str, list[str]] = {}
        for short, key in fits.items():
            by_shard.setdefault(self.shard_of[key], []).append(short)
        out = {}
        for shard, shorts in by_shard.items():
            with safe_open(str(self.path / shard), framework="pt", device=device) as handle:
                for short in shorts:
                    tensor = handle.get_tensor(fits[short])
                    self.read.add(fits[short])
                    out[short] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
        return out


def _not_a_folder(path: Path) -> str:
    if not path.exists():
        return f"checkpoint folder '{path}' does not exist"
    if path.is_file():
        hint = (f"; did you mean its folder '{path.parent}'?" if path.suffix in (".safetensors", ".json")
                else "")
        return (f"checkpoint '{path}' is a file, not a folder: pass the folder that holds config.json and the "
                f"*.safetensors weights{hint}")
    return f"checkpoint '{path}' is not a folder (a special file): pass the folder that holds config.json"


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{what} '{path}' is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{what} '{path}' is unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} '{path}' must hold a JSON object")
    return data


def _some(keys: Iterable[str], limit: int = 8) -> str:
    keys = list(keys)
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
