"""What a graph's nodes need of a checkpoint: the nodes that need one (`Node.needs_checkpoint`) get one, and
without one given, a run uses the one their kinds declare (`Node.default_checkpoint`).

A family's node kinds point at the family's builder (e.g. Qwen3-Omni's cached tiny random checkpoint), so the
runtime never names a model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .errors import Location, MissingCheckpoint, UserError
from .graph import Graph


def require_checkpoint(graph: Graph, checkpoint: Any) -> None:
    """Before anything loads: a MissingCheckpoint at the first node (in the graph file) that needs a
    checkpoint, when none is given."""
    if checkpoint is not None:
        return
    for name in graph.topological_order():
        node = graph.nodes[name]
        if node.cls.needs_checkpoint:
            raise MissingCheckpoint(name, node.kind, node.defined_at or Location(graph.file))


def default_checkpoint_builder(graph: Graph) -> Callable[[], Path] | None:
    """The builder of the default checkpoint of `graph`, or None when no node needs a checkpoint.

    Kinds that read only family-agnostic files (a tokenizer) declare no default and take the others' one;
    the kinds that declare one must agree, else the user has to choose (UserError).
    """
    needing = [node for node in graph.nodes.values() if node.cls.needs_checkpoint]
    if not needing:
        return None
    builders = {node.cls.default_checkpoint for node in needing} - {None}
    where = Location(graph.file)
    if not builders:
        names = ", ".join(f"'{n.name}' ({n.kind})" for n in needing)
        raise UserError(f"{where}: node {names} needs a checkpoint and no node kind of the graph has a default "
                        f"one: pass --checkpoint DIR")
    if len(builders) > 1:
        kinds = sorted({n.kind for n in needing if n.cls.default_checkpoint is not None})
        raise UserError(f"{where}: the node kinds {', '.join(kinds)} default to different checkpoints "
                        f"(they come from different model families): pass --checkpoint DIR")
    return builders.pop()
