"""Turning caller-given values (payloads, or strings from the command line) into graph input payloads."""
from __future__ import annotations

from typing import Any, Iterable

from .errors import UserError, did_you_mean
from .graph import Graph, GraphInput
from .payloads import Payload


def parse_cli_inputs(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` strings -> {name: value}."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--input {item!r}: expected NAME=VALUE, e.g. --input text='hello'")
        out[name.strip()] = value
    return out


def prepare_inputs(graph: Graph, given: dict[str, Any] | None) -> dict[str, Any]:
    """Check names, apply defaults, parse strings; returns {input name: payload or iterable of payloads}.

    Inputs left out (and without a default) are absent: nodes needing them are skipped.
    """
    given = dict(given or {})
    for name in given:
        if name not in graph.inputs:
            hint = did_you_mean(name, graph.inputs) or "this graph takes no inputs"
            raise UserError(f"graph '{graph.name}' has no input '{name}'; {hint}")
    out = {}
    for name, decl in graph.inputs.items():
        if name in given and given[name] is not None:
            out[name] = _coerce(decl, given[name])
        elif decl.default is not None:
            out[name] = _coerce(decl, decl.default)
        elif decl.required:
            raise UserError(f"graph '{graph.name}' needs input '{name}' ({decl.port.type.__name__}"
                            f"{': ' + decl.doc if decl.doc else ''}); pass --input {name}=...")
    return out


def _coerce(decl: GraphInput, value: Any) -> Any:
    expected = decl.port.type
    if isinstance(value, expected):
        return value
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return expected.from_cli(str(value))
        except UserError as exc:
            raise UserError(f"input '{decl.name}': {exc}") from None
    if decl.port.is_stream and isinstance(value, Iterable) and not isinstance(value, (Payload, dict)):
        return value  # an iterable feeding a stream port; items are checked as they flow
    raise UserError(f"input '{decl.name}' takes {expected.__name__}, got {type(value).__name__}")
