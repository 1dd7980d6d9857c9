"""Turning caller-given values (payloads, or strings from the command line) into graph input payloads."""
from __future__ import annotations

from typing import Any, Iterable

from .errors import UserError, did_you_mean
from .graph import Graph, GraphInput
from .payloads import Payload
from .ports import Port


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


def default_problem(port: Port, value: Any) -> str | None:
    """Why `value` cannot be the `default:` of a graph input feeding `port`, or None if it can.

    A default is parsed like `--input`: it must be a string or a number, for a type that takes command-line text.
    """
    if not _is_cli_value(value):
        return f"a default is parsed like --input and must be a string or a number, not {type(value).__name__}"
    if port.type.from_cli.__func__ is Payload.from_cli.__func__:
        return f"the input feeds {port.type.__name__} ports, which take no value from text: it can have no default"
    return None


def _is_cli_value(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _coerce(decl: GraphInput, value: Any) -> Any:
    expected = decl.port.type
    if isinstance(value, expected):
        return value
    if _is_cli_value(value):
        try:
            return expected.from_cli(str(value))
        except UserError as exc:
            raise UserError(f"input '{decl.name}': {exc}") from None
    if decl.port.is_stream and isinstance(value, Iterable) and not isinstance(value, (Payload, dict)):
        return value  # an iterable feeding a stream port; items are checked as they flow
    raise UserError(f"input '{decl.name}' takes {expected.__name__}, got {type(value).__name__}")
