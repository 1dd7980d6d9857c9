"""The JSON Schema of graph files (`omnigraph schema`): editors must accept good graphs and flag bad ones."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from omnigraph.runtime.registry import default_registry
from omnigraph.runtime.schema import graph_json_schema

GRAPHS = Path(__file__).parents[2] / "graphs"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return graph_json_schema(default_registry())


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def demo() -> dict[str, Any]:
    return yaml.safe_load((GRAPHS / "demo.yaml").read_text())


def errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(doc)]


def config_rules(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """kind -> the config schema that applies to nodes of that kind."""
    rules = schema["$defs"]["NodeSpec"]["allOf"]
    return {r["if"]["properties"]["kind"]["const"]: r["then"]["properties"]["config"] for r in rules}


def test_schema_is_a_valid_draft_2020_12_json_document(schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(schema)) == schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_graphs_validate(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    assert errors(validator, yaml.safe_load(path.read_text())) == []


def test_schema_lists_each_kinds_config_properties(schema: dict[str, Any]) -> None:
    registry = default_registry()
    rules = config_rules(schema)
    assert set(rules) == set(registry.kinds())
    for kind, config in rules.items():
        assert set(config.get("properties", {})) == set(registry.get(kind).Config.model_fields), kind
        assert config["additionalProperties"] is False
    wpm = rules["morse_synth"]["properties"]["wpm"]
    assert wpm["type"] == "number" and wpm["default"] == 20.0 and "words per minute" in wpm["description"]


def test_kind_is_an_enum_of_registered_kinds(schema: dict[str, Any]) -> None:
    assert schema["$defs"]["NodeSpec"]["properties"]["kind"]["enum"] == default_registry().kinds()


def test_unknown_config_field_does_not_validate(validator: jsonschema.Draft202012Validator,
                                                demo: dict[str, Any]) -> None:
    demo["nodes"]["morse"]["config"]["speed"] = 3
    assert any("'speed' was unexpected" in m for m in errors(validator, demo))


def test_unknown_kind_does_not_validate(validator: jsonschema.Draft202012Validator, demo: dict[str, Any]) -> None:
    demo["nodes"]["morse"]["kind"] = "morse_synt"
    assert any("'morse_synt' is not one of" in m for m in errors(validator, demo))


@pytest.mark.parametrize("node, field, value", [
    ("split", "unit", "sentences"),  # not one of the choices
    ("morse", "wpm", 0),  # must be > 0
    ("morse", "wpm", "fast"),  # not a number
    ("join", "separator", 3),  # not a string
])
def test_bad_config_values_do_not_validate(validator: jsonschema.Draft202012Validator, demo: dict[str, Any],
                                           node: str, field: str, value: Any) -> None:
    demo["nodes"][node].setdefault("config", {})[field] = value
    assert errors(validator, demo)


def test_config_rules_apply_to_the_nodes_own_kind_only(validator: jsonschema.Draft202012Validator,
                                                       demo: dict[str, Any]) -> None:
    demo["nodes"]["join"]["config"] = {"wpm": 10}  # a morse_synth field on a join_text node
    assert any("'wpm' was unexpected" in m for m in errors(validator, demo))


@pytest.mark.parametrize("edit", [
    lambda g: g["edges"].append("split.pieces => join.pieces"),  # not an edge
    lambda g: g["outputs"].update(bad="join"),  # not node.port
    lambda g: g["nodes"].update({"1st": {"kind": "join_text"}}),  # bad node name
    lambda g: g["inputs"].update({"two words": "split.text"}),  # bad input name
    lambda g: g.update(bogus=1),  # unknown section
    lambda g: g["nodes"]["split"].update(placement={"gpus": 1}),  # unknown placement field
    lambda g: g["nodes"]["split"].update(placement={"device": "tpu"}),  # not a device
    lambda g: g["nodes"]["split"].pop("kind"),  # kind is required
    lambda g: g["inputs"]["text"].update(to=[]),  # an input feeds at least one port
])
def test_structural_mistakes_do_not_validate(validator: jsonschema.Draft202012Validator, demo: dict[str, Any],
                                             edit: Any) -> None:
    assert errors(validator, demo) == []
    edit(demo)
    assert errors(validator, demo)


@pytest.mark.parametrize("to", ["split.text", ["split.text"], {"to": ["split.text"], "required": True}])
def test_input_shorthands_validate(validator: jsonschema.Draft202012Validator, demo: dict[str, Any],
                                   to: Any) -> None:
    demo["inputs"]["text"] = copy.deepcopy(to)
    assert errors(validator, demo) == []


def test_an_extending_graph_validates(validator: jsonschema.Draft202012Validator) -> None:
    doc = yaml.safe_load("""
        extends: demo
        nodes:
          redact: {kind: regex_replace, config: {pattern: secret, replacement: "*"}}
        replace:
          join: {kind: join_text, config: {separator: " "}}
        remove: [morse]
        insert:
          - node: redact
            "on": split.pieces -> join.pieces
        outputs: {text: join.text}
        """)  # 'on' quoted: PyYAML reads a bare `on:` key as True (YAML 1.1); editors and omnigraph do not
    assert errors(validator, doc) == []
    doc["replace"]["join"]["config"]["sep"] = " "
    assert errors(validator, doc)


def test_placement_validates(validator: jsonschema.Draft202012Validator, demo: dict[str, Any]) -> None:
    demo["nodes"]["morse"]["placement"] = {"group": "speech", "num_gpus": 1, "num_cpus": 2, "memory": 10**9,
                                           "resources": {"tpu": 1}, "replicas": 2, "device": "cuda"}
    assert errors(validator, demo) == []
