"""Does a checkpoint fit a graph? Checked from config.json and the safetensors headers, reading no tensor data.

Each node that needs a checkpoint runs `Node.check_checkpoint` on a `CheckpointProbe`: by default its own
`setup` on the meta device, so the config fields it reads and the tensors it asks for (names, shapes from its
weights key table, floating dtypes) are exactly those its loader uses. Every node is checked; all problems are
reported together, per node. `omnigraph validate --checkpoint` and `omnigraph run` both call `check_checkpoint`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from .checkpoint import Checkpoint
from .errors import CheckpointError, UserError
from .graph import Graph

if TYPE_CHECKING:
    import torch


@dataclass
class CheckpointProbe(Checkpoint):
    """A Checkpoint whose `load` checks tensors against the shard headers and returns meta tensors of the
    expected shapes; problems are collected in `problems` instead of raised, so a node's check goes on."""

    problems: list[str] = field(default_factory=list, repr=False, compare=False)
    fitting: set[str] = field(default_factory=set, repr=False, compare=False)  # keys that matched, all nodes

    def load(self, prefix: str, expected: Mapping[str, tuple[int, ...]], dtype: torch.dtype | None = None,
             device: str = "cpu", optional: Iterable[str] = ()) -> dict[str, torch.Tensor]:
        import torch

        problems, fits = self.match(prefix, expected, optional)
        self.problems += [f"under '{prefix}': {p}" for p in problems]
        self.fitting.update(fits.values())
        optional = set(optional)
        return {short: torch.empty(shape, dtype=dtype or torch.float32, device="meta")
                for short, shape in expected.items() if short in fits or short not in optional}


@dataclass(frozen=True)
class CheckpointReport:
    path: Path
    nodes: tuple[str, ...]  # the nodes checked
    tensors: int  # distinct tensors the checked nodes read


def check_checkpoint(graph: Graph, path: str | Path) -> CheckpointReport:
    """Check every node of `graph` that needs a checkpoint against the one at `path`; raise one CheckpointError
    listing each node's problems (missing config fields, missing / unexpected / mis-shaped tensors)."""
    probe = CheckpointProbe.open(path)
    failures, checked = [], []
    for name in graph.topological_order():
        node = graph.nodes[name]
        if not node.cls.needs_checkpoint:
            continue
        checked.append(name)
        probe.problems = []
        try:
            node.build().check_checkpoint(probe)
        except UserError as exc:
            probe.problems.append(str(exc))
        except (TypeError, ValueError, AttributeError) as exc:  # a config.json value of the wrong type or size
            probe.problems.append(f"{probe.path / 'config.json'} has values this node cannot use: "
                                  f"{type(exc).__name__}: {exc}")
        if probe.problems:
            failures.append(f"node '{name}' ({node.kind}):\n    " + "\n    ".join(
                _without_subject(p, name).replace("\n", "\n    ") for p in probe.problems))
    if failures:
        raise CheckpointError(f"checkpoint '{probe.path}' does not fit graph '{graph.name}' ({graph.file}):\n  "
                              + "\n  ".join(failures))
    return CheckpointReport(probe.path, tuple(checked), len(probe.fitting))


def _without_subject(message: str, node: str) -> str:
    """A node's own message without its leading "node 'x' (kind):" (the report's heading already says it)."""
    return re.sub(rf"^node '{re.escape(node)}'( \([\w.-]+\))?: ", "", message)
