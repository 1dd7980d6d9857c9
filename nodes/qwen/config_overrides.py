"""Sub-config updates of a written checkpoint's config.json, by dotted path ("thinker_config.text_config")."""
from __future__ import annotations

from typing import Any, Callable


def apply_overrides(config: dict[str, Any], overrides: dict[str, dict[str, Any]] | None,
                    rope: Callable[[float, list[int]], dict[str, Any]]) -> dict[str, Any]:
    """`config` with each override merged into its sub-config (a ValueError names a path that does not exist);
    a `mrope_section` value becomes the family's rope fields (`rope(theta, sections)`)."""
    for path, values in (overrides or {}).items():
        target = config
        for part in path.split("."):
            if not isinstance(target.get(part), dict):
                raise ValueError(f"config override path '{path}': no sub-config '{part}'")
            target = target[part]
        values = dict(values)
        if "mrope_section" in values:
            target.update(rope(target.get("rope_theta", 1e6), values.pop("mrope_section")))
        target.update(values)
    return config
