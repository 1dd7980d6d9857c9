"""Config and placement overrides from the command line (`--set NODE.FIELD=VALUE`, run-wide flags).

Each override keeps the flag the user typed, so that a problem with it is reported under that spelling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .errors import Location, UserError
from .yaml_source import is_exponent_float

PLACEMENT = "placement."  # `--set NODE.placement.FIELD=VALUE` edits a placement, not the config
ALL_NODES = "*"  # an override for every node whose config declares the field (e.g. --greedy)


@dataclass(frozen=True)
class Setting:
    """An override's value and the flag that gave it (e.g. '--set *.top_k' or '--max-new-tokens')."""

    value: Any
    flag: str


def parse_overrides(items: list[str]) -> dict[tuple[str, str], Setting]:
    """`NODE.FIELD=VALUE` strings (values read as YAML scalars/lists) -> {(node, field): setting}."""
    out = {}
    for item in items:
        target, sep, raw = item.partition("=")
        node, dot, field = target.strip().partition(".")
        if not sep or not dot or not node or not field:
            raise UserError(f"--set {item!r}: expected NODE.FIELD=VALUE, e.g. --set thinker.max_new_tokens=64")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and is_exponent_float(raw.strip()):
            value = float(value)  # as in graph files: `1e-3` is a number
        out[(node, field)] = Setting(value, f"--set {target.strip()}")
    return out


def value_of(override: Any) -> Any:
    """The value of an override given as a `Setting` or (from Python callers) as a plain value."""
    return override.value if isinstance(override, Setting) else override


def flag_of(override: Any, fallback: str) -> Location:
    """Where an override came from: the flag the user typed, else `fallback` (for plain values)."""
    return Location(override.flag if isinstance(override, Setting) else fallback)
