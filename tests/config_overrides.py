"""Oracle configs with per-test overrides (test-only): one merge rule for every family's tiny config."""
from __future__ import annotations

import copy
from typing import Any


def with_overrides(base: dict[str, Any], overrides: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """A deep copy of `base` with `overrides` merged per sub-config, keyed by dotted path
    (e.g. {"thinker_config.text_config": {"head_dim": 24}})."""
    out = copy.deepcopy(base)
    for path, values in (overrides or {}).items():
        target = out
        for part in path.split("."):
            target = target[part]
        target.update(values)
    return out
