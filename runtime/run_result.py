"""What a finished run returns, on every executor: its outputs, why any is missing, and its timings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .graph import Graph
from .payloads import Payload
from .stats import RunStats


@dataclass
class RunResult:
    """Graph outputs (whole values, or lists of stream items), why any output is missing, and timings."""

    outputs: dict[str, Any]
    missing: dict[str, str]
    stats: RunStats
    stream_types: dict[str, type[Payload]] = field(default_factory=dict)  # stream outputs -> item type

    def joined(self, name: str) -> Any:
        """An output as one value: a stream's items joined by their payload type, when it knows how."""
        value = self.outputs[name]
        item_type = self.stream_types.get(name)
        if item_type is None:
            return value
        joined = item_type.join(value)
        return value if joined is None else joined


def assemble_result(graph: Graph, outputs: dict[str, Any], skip_reasons: dict[str, str],
                    stats: RunStats) -> RunResult:
    """The result of a finished run: empty lists for silent streams, and why each whole output is missing."""
    missing = {}
    stream_types = {n: o.port.type for n, o in graph.outputs.items() if o.port.is_stream}
    for name, out in graph.outputs.items():
        if name in stream_types:
            outputs.setdefault(name, [])
        elif name not in outputs:
            skipped = skip_reasons.get(out.src.node)
            missing[name] = (f"node '{out.src.node}' was skipped: {skipped}" if skipped
                             else f"node '{out.src.node}' produced no '{out.src.port}'")
    return RunResult(outputs, missing, stats, stream_types)
