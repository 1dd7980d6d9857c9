"""The strict-number policy of node configs and placements: no booleans as numbers, finite floats, bounded ints."""
from __future__ import annotations

from typing import Any

import pytest

from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.overrides import parse_overrides
from omnigraph.runtime.registry import default_registry
from omnigraph.runtime.spec import Placement
from omnigraph.runtime.validate import load_graph, load_graph_text


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


def test_exponent_floats_are_numbers_in_files_and_flags() -> None:
    """PyYAML reads `1e-3` as text (YAML 1.1); strict configs would refuse it, so it is read as a number."""
    graph = load_graph_text("extends: demo\nreplace:\n  morse: {kind: morse_synth, config: {wpm: 1.5e1, volume: 5e-1}}\n",
                            overrides=parse_overrides(["morse.tone_hz=4e2"]))
    config = graph.nodes["morse"].config
    assert (config.wpm, config.volume, config.tone_hz) == (15.0, 0.5, 400.0)
    with pytest.raises(GraphValidationError, match="valid integer"):
        load_graph("demo", overrides=parse_overrides(["morse.sample_rate=2e4"]))
