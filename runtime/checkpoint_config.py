"""config.json as read by node loaders: a required field that is absent names the file and its dotted key.

Loaders read required fields with `config["key"]` and optional ones with `config.get("key", default)`; wrapped
in `ConfigSection`, the first raises `MissingConfigField` (a user error, exit 2) instead of a bare KeyError.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import CheckpointError


class MissingConfigField(CheckpointError, KeyError):
    """A field a node needs is absent from config.json. Still a KeyError, so `key in`-style fallbacks work."""

    def __init__(self, file: Path, key: str):
        self.file, self.key = file, key
        super().__init__(f"{file}: required field '{key}' is missing (is config.json complete, and from a "
                         f"checkpoint of this model family?)")

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigSection(dict):
    """A JSON object of config.json that knows its file and its key path (nested objects are wrapped too)."""

    def __init__(self, data: dict[str, Any], file: Path, path: str = ""):
        super().__init__((k, _wrap(v, file, f"{path}{k}")) for k, v in data.items())
        self.file, self.path = file, path

    def __missing__(self, key: str) -> Any:
        raise MissingConfigField(self.file, f"{self.path}{key}")


def check_budget(node: str, field: str, budget: int, limit: int | None, where: str) -> None:
    """A node's budget past a limit of the checkpoint (`limit`, from config.json key `where`, e.g. its
    max_position_embeddings) is a user error; nodes call it in `setup` before any weight loads."""
    if limit is not None and budget > limit:
        raise CheckpointError(f"node '{node}': {field} = {budget} is more than this checkpoint's {limit} positions "
                              f"({where} in config.json, prompt included); use at most {limit}")


def config_problem(section: Any, key: str, problem: str) -> CheckpointError:
    """A user error for a value of config.json that a node cannot use: names the file and the dotted key (when
    `section` is a ConfigSection; a plain dict reads as config.json), then `problem` (what is wrong, how to fix)."""
    file, path = getattr(section, "file", "config.json"), getattr(section, "path", "")
    return CheckpointError(f"{file}: {path}{key} = {section.get(key)!r}: {problem}")


def _wrap(value: Any, file: Path, path: str) -> Any:
    if isinstance(value, dict):
        return ConfigSection(value, file, path + ".")
    if isinstance(value, list):
        return [_wrap(v, file, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
