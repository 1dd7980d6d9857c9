"""The embedded default executor: one thread per node, bounded channels, items delivered as produced."""
from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from .checkpoint_needs import require_checkpoint
from .device import choose_device
from .errors import RunCancelled
from .executor import cancel_runs
from .graph import Graph
from .inputs import prepare_inputs
from .loops import fuse_loops
from .node import Node
from .run_outputs import RunOutputs
from .run_part import RunPart
from .run_result import RunResult
from .stats import RunStats



class LocalExecutor:
    """Runs a validated graph in this process. Load once, then start any number of concurrent runs.

    `device` (`auto`: CUDA when torch sees a GPU, else CPU) is where nodes compute unless their placement names
    a device; a device torch cannot use is a DeviceUnavailable error here, before anything loads.
    """

    name = "local"

    def __init__(self, graph: Graph, *, device: str = "auto", checkpoint: Any = None, buffer_size: int = 64):
        from .checkpoint import Checkpoint

        self.graph = graph
        self.device = device
        self.devices = {name: _node_device(spec, device) for name, spec in graph.nodes.items()}
        self.checkpoint = Checkpoint.open(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
        require_checkpoint(graph, self.checkpoint)
        self.buffer_size = buffer_size
        self.nodes: dict[str, Node] = {name: spec.build() for name, spec in graph.nodes.items()}
        self._runs: set[Run] = set()
        self._lock = threading.Lock()

    def load(self, stop: threading.Event | None = None) -> None:
        """Load every node; when `stop` is set, stop before the next node with RunCancelled."""
        for name in self.graph.topological_order():
            if stop is not None and stop.is_set():
                raise RunCancelled("loading was cancelled")
            self.nodes[name].load(self.devices[name], self.checkpoint)
        fuse_loops(self.graph, self.nodes, self.nodes)

    def start(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> Run:
        """Begin a run; iterate `Run.events()` for outputs as they come, or call `Run.result()`.
        Bad inputs are a UserError before anything loads."""
        prepared = prepare_inputs(self.graph, inputs)
        self.load()
        return Run(self, prepared, seed)

    def run(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> RunResult:
        return self.start(inputs, seed=seed).result()

    def shutdown(self) -> None:
        """Cancel runs still going (waiting a little for them to end) and drop the loaded nodes, releasing their
        weights; a later `load` or `start` loads afresh."""
        with self._lock:
            running = list(self._runs)
        cancel_runs(running)
        self.nodes = {name: spec.build() for name, spec in self.graph.nodes.items()}
        _release_cuda_cache(self.devices.values())

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def _track(self, run: Run, running: bool) -> None:
        with self._lock:
            (self._runs.add if running else self._runs.discard)(run)


class _OutputTap:
    """Where a graph output's items go: the run's event queue."""

    def __init__(self, run: Run, name: str):
        self.run, self.name = run, name

    def open(self) -> None:
        pass

    def put(self, item: Any) -> None:
        self.run._emit(self.name, item)

    def close(self, *, absent: bool = False) -> None:
        pass


class Run(RunOutputs):
    """One run of a graph: its own channels, threads and stats (a `RunPart` holding every node)."""

    def __init__(self, executor: LocalExecutor, inputs: dict[str, Any], seed: int):
        graph = executor.graph
        self.executor, self.graph = executor, graph
        self.id = uuid.uuid4().hex[:12]
        self.seed = seed
        self.stats = RunStats(self.id, executor.name)
        self._init_outputs(graph)
        self.part = RunPart(graph, executor.nodes, run_id=self.id, seed=seed, stats=self.stats,
                            buffer_size=executor.buffer_size)
        for name in self.part.outputs:
            self.part.connect(graph.outputs[name].src, _OutputTap(self, name))
        executor._track(self, True)
        self.part.start(inputs, on_end=self._part_ended)

    def cancel(self) -> None:
        """Stop every node at its next channel operation; `result()` then raises RunCancelled (nothing changes
        once it ended)."""
        self.part.cancel()

    def _part_ended(self) -> None:
        with self._lock:
            self.error, self._cancelled_by_caller = self.part.error, self.part.cancelled_by_caller
        self.executor._track(self, False)
        self._finish()

    def _skip_reasons(self) -> dict[str, str]:
        return self.part.skip_reasons


def _node_device(spec: Any, default: str) -> str:
    """A node's device: its placement's, else the executor's (both `auto|cpu|cuda`)."""
    if spec.placement.device == "auto":
        return choose_device(default)
    at = f"{spec.placement_at}: " if spec.placement_at else ""
    return choose_device(spec.placement.device, what=f"{at}node '{spec.name}' has placement device 'cuda'")


def _release_cuda_cache(devices: Any) -> None:
    if "cuda" in devices:
        import torch

        torch.cuda.empty_cache()
