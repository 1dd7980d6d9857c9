"""Helpers that run a node or a graph in a few lines (for this project's tests and for node authors').

    outputs = run_node("split_text", {"text": Text("a b")})           # {"pieces": [Text("a "), Text("b")]}
    result = run_graph("demo", {"text": "sos"})                       # a RunResult
    graph = graph_from_yaml("nodes: ...", extra_kinds=[MyNode])       # a validated Graph
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .runtime.executor_local import LocalExecutor
from .runtime.graph import Graph
from .runtime.node import Node
from .runtime.registry import Registry, default_registry
from .runtime.run_result import RunResult
from .runtime.validate import load_graph, load_graph_text


def _registry(extra_kinds: list[type[Node]] | None) -> Registry:
    return default_registry().extended(*extra_kinds) if extra_kinds else default_registry()


def graph_from_yaml(text: str, *, extra_kinds: list[type[Node]] | None = None, base_dir: Path | None = None,
                    overrides: dict | None = None) -> Graph:
    """Validate YAML text into a Graph (raises GraphValidationError)."""
    return load_graph_text(text, base_dir=base_dir, overrides=overrides, registry=_registry(extra_kinds))


def run_graph(graph: str | Path | Graph, inputs: dict[str, Any] | None = None, *, seed: int = 0,
              extra_kinds: list[type[Node]] | None = None, overrides: dict | None = None,
              **executor_options: Any) -> RunResult:
    """Run a graph (a Graph, a file, or a shipped name) on the local executor and wait for its result."""
    if not isinstance(graph, Graph):
        graph = load_graph(graph, overrides=overrides, registry=_registry(extra_kinds))
    return LocalExecutor(graph, **executor_options).run(inputs, seed=seed)


def run_node(kind: str | type[Node], inputs: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
             *, seed: int = 0, **executor_options: Any) -> dict[str, Any]:
    """Run one node as a one-node graph: every given input is a graph input, every output a graph output.

    Returns {output port: whole value, or list of stream items}; outputs not produced are left out.
    """
    extra = [kind] if isinstance(kind, type) else None
    kind_name = kind.kind if isinstance(kind, type) else kind
    inputs = inputs or {}
    cls = _registry(extra).get(kind_name)
    if cls is None:
        raise KeyError(f"unknown node kind '{kind_name}'")
    spec = {
        "name": f"node-{kind_name}",
        "nodes": {"node": {"kind": kind_name, "config": config or {}}},
        "inputs": {port: f"node.{port}" for port in inputs},
        "outputs": {p.name: f"node.{p.name}" for p in cls.outputs},
    }
    graph = graph_from_yaml(yaml.safe_dump(spec, sort_keys=False), extra_kinds=extra)
    return LocalExecutor(graph, **executor_options).run(inputs, seed=seed).outputs
