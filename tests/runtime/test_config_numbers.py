"""The strict-number policy of node configs and placements: no booleans as numbers, finite floats, bounded ints."""
from __future__ import annotations

from typing import Any

import pytest

from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.overrides import parse_overrides
from omnigraph.runtime.registry import default_registry
from omnigraph.runtime.spec import Placement
from omnigraph.runtime.validate import load_graph


def _integer_fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, prop in schema.get("properties", {}).items():
        for option in prop.get("anyOf", [prop]):
            if option.get("type") == "integer":
                out[name] = option
    return out


@pytest.mark.parametrize("model", [Placement] + [default_registry().get(k).Config for k in default_registry().kinds()],
                         ids=["placement"] + default_registry().kinds())
def test_every_int_field_has_an_upper_bound(model: Any) -> None:
    unbounded = [n for n, p in _integer_fields(model.model_json_schema()).items()
                 if "maximum" not in p and "exclusiveMaximum" not in p]
    assert not unbounded, f"{model.__qualname__}: int fields without le=...: {unbounded}"


@pytest.mark.parametrize("setting, message", [
    ("morse.wpm=true", "valid number"),
    ("morse.wpm=.inf", "finite number"),
    ("morse.wpm=.nan", "finite number"),
    ("morse.sample_rate=24000.0", "valid integer"),
    ("morse.sample_rate=123456789012345678901234", "less than or equal to"),
    ("morse.placement.num_gpus=.inf", "finite number"),
    ("morse.placement.replicas=true", "valid integer"),
    ("morse.placement.resources={x: -2}", "greater than or equal to 0"),
])
def test_bad_numbers_are_reported_at_validation(setting: str, message: str) -> None:
    with pytest.raises(GraphValidationError) as info:
        load_graph("demo", overrides=parse_overrides([setting]))
    (issue,) = info.value.issues
    assert issue.where.file == f"--set {setting.partition('=')[0]}"
    assert message in issue.message
