"""JSON Schema of graph files, with each registered kind's config schema attached to nodes of that kind."""
from __future__ import annotations

from typing import Any

from .registry import Registry
from .spec import EDGE_PATTERN, NAME_PATTERN, PORT_REF_PATTERN, GraphFile


def graph_json_schema(registry: Registry) -> dict[str, Any]:
    schema = GraphFile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    node_def = defs["NodeSpec"]
    node_def["properties"]["kind"]["enum"] = registry.kinds()
    rules = []
    for kind in registry.kinds():
        config_schema = registry.get(kind).Config.model_json_schema(ref_template="#/$defs/" + kind + "__{model}")
        for name, sub in config_schema.pop("$defs", {}).items():
            defs[f"{kind}__{name}"] = sub
        config_schema["additionalProperties"] = False
        rules.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                      "then": {"properties": {"config": config_schema}}})
    node_def["allOf"] = rules
    for section in ("edges", "loops"):
        schema["properties"][section]["items"]["pattern"] = EDGE_PATTERN
    schema["properties"]["outputs"]["additionalProperties"]["pattern"] = PORT_REF_PATTERN
    for section in ("nodes", "replace", "inputs", "outputs"):
        schema["properties"][section]["propertyNames"] = {"pattern": NAME_PATTERN}
    schema["properties"]["remove"]["items"]["pattern"] = NAME_PATTERN
    defs["InsertSpec"]["properties"]["on"]["pattern"] = EDGE_PATTERN
    # InputSpec also accepts the shorthands 'node.port' and ['node.port', ...].
    input_def = defs.pop("InputSpec")
    refs = {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": PORT_REF_PATTERN}}
    input_def["properties"]["to"] = {"anyOf": [{"type": "string", "pattern": PORT_REF_PATTERN}, refs],
                                     "description": input_def["properties"]["to"].get("description", "")}
    defs["InputSpecFull"] = input_def
    defs["InputSpec"] = {"anyOf": [{"$ref": "#/$defs/InputSpecFull"},
                                   {"type": "string", "pattern": PORT_REF_PATTERN},
                                   {"type": "array", "items": {"type": "string", "pattern": PORT_REF_PATTERN}}]}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "omnigraph graph file"
    return schema
