"""Per-run timings and item counts, and their export as a Chrome/Perfetto trace."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class NodeStats:
    """One node in one run. Times are seconds since the run started."""

    name: str
    kind: str
    started: float | None = None
    finished: float | None = None
    first_output: float | None = None
    items_in: Counter = field(default_factory=Counter)
    items_out: Counter = field(default_factory=Counter)
    skipped: str | None = None
    worker: str = ""  # where it ran (thread, or actor for remote executors)
    actor: str = ""  # Ray actor id (Ray executor)
    ray_node: str = ""  # Ray node id (Ray executor)
    device: str = ""  # where its tensors live: cpu or cuda ('' before it loaded)
    dtype: str | None = None  # the dtype it computes in, for nodes with a `dtype` setting

    @property
    def wall(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "started_s": _round(self.started),
            "wall_s": _round(self.wall),
            "first_output_s": _round(self.first_output),
            "items_in": dict(self.items_in),
            "items_out": dict(self.items_out),
            "skipped": self.skipped,
            "worker": self.worker,
            "device": self.device,
            **({"dtype": self.dtype} if self.dtype else {}),
            **({"actor": self.actor, "ray_node": self.ray_node} if self.actor else {}),
        }


@dataclass
class RunStats:
    """Timings of one run: per node, per graph output, and the whole."""

    run_id: str
    executor: str
    t0: float = field(default_factory=time.perf_counter)
    wall: float | None = None
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    first_output: dict[str, float] = field(default_factory=dict)  # graph output -> seconds to first item

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "executor": self.executor,
            "wall_s": _round(self.wall),
            "first_output_s": {k: _round(v) for k, v in self.first_output.items()},
            "nodes": {name: s.to_json() for name, s in self.nodes.items()},
        }

    def chrome_trace(self) -> dict[str, Any]:
        """Trace Event Format (chrome://tracing, ui.perfetto.dev): one track per node, one process per actor."""
        title = f"omnigraph run {self.run_id} ({self.executor})"
        pids: dict[str, int] = {}
        events: list[dict[str, Any]] = []
        for tid, s in enumerate(self.nodes.values(), start=1):
            if s.actor not in pids:
                pids[s.actor] = pid = len(pids) + 1
                name = f"{title}: {s.worker.split(' pid ')[0]} actor {s.actor[:12]}" if s.actor else title
                events.append({"ph": "M", "pid": pid, "name": "process_name", "args": {"name": name}})
            pid = pids[s.actor]
            events.append({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                           "args": {"name": f"{s.name} ({s.kind})"}})
            if s.started is None:
                continue
            end = s.finished if s.finished is not None else self.wall or s.started
            events.append({"ph": "X", "pid": pid, "tid": tid, "name": s.name, "cat": s.kind,
                           "ts": _us(s.started), "dur": _us(end - s.started),
                           "args": {"items_in": dict(s.items_in), "items_out": dict(s.items_out),
                                    "worker": s.worker, "actor": s.actor, "ray_node": s.ray_node}})
            if s.first_output is not None:
                events.append({"ph": "i", "s": "t", "pid": pid, "tid": tid, "name": "first output",
                               "ts": _us(s.first_output)})
        for name, t in self.first_output.items():
            events.append({"ph": "i", "s": "g", "pid": 1, "name": f"first '{name}' output", "ts": _us(t)})
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def write_trace(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.chrome_trace()))
        return path


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)
