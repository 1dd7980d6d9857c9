"""The embedded default executor: one thread per node, bounded channels, items delivered as produced."""
from __future__ import annotations

from pathlib import Path
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from .channels import Absent, Cancelled, Channel
from .context import RunContext, enter_run
from .errors import NodeFailed, RunCancelled
from .graph import Graph, GraphEdge
from .inputs import prepare_inputs
from .node import Node
from .payloads import Payload
from .ports import Port
from .run_outputs import DONE, RunOutputs
from .spec import Endpoint
from .stats import NodeStats, RunStats

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


class LocalExecutor:
    """Runs a validated graph in this process. Load once, then start any number of concurrent runs."""

    name = "local"

    def __init__(self, graph: Graph, *, device: str = "cpu", checkpoint: Any = None, buffer_size: int = 64):
        from .checkpoint import Checkpoint

        self.graph = graph
        self.device = device
        self.checkpoint = Checkpoint.open(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
        self.buffer_size = buffer_size
        self.nodes: dict[str, Node] = {name: spec.build() for name, spec in graph.nodes.items()}

    def load(self, stop: threading.Event | None = None) -> None:
        """Load every node; when `stop` is set, stop before the next node with RunCancelled."""
        for name in self.graph.topological_order():
            if stop is not None and stop.is_set():
                raise RunCancelled("loading was cancelled")
            self.nodes[name].load(self.device, self.checkpoint)

    def start(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> Run:
        """Begin a run; iterate `Run.events()` for outputs as they come, or call `Run.result()`."""
        self.load()
        return Run(self, prepare_inputs(self.graph, inputs), seed)

    def run(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> RunResult:
        return self.start(inputs, seed=seed).result()


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
    """One run of a graph: its own channels, threads and stats; shares only the loaded nodes.

    A run may hold only some of the graph's nodes (`here`): the Ray executor runs one such part per actor and
    overrides the hooks that wire edges leaving or entering the part (`_remote_sink`, `_output_sink`, `_relays`).
    """

    def __init__(self, executor: Any, inputs: dict[str, Any], seed: int, *, run_id: str | None = None,
                 here: Iterable[str] | None = None, started_at: float | None = None):
        graph = executor.graph
        self.executor = executor
        self.id = run_id or uuid.uuid4().hex[:12]
        self.seed = seed
        self.here = frozenset(graph.nodes if here is None else here)
        self.cancelled = threading.Event()
        self.stats = RunStats(self.id, executor.name)
        if started_at is not None:  # a part of a run begun elsewhere: time from when it began (wall clock)
            self.stats.t0 -= time.time() - started_at
        self._init_outputs(graph)
        self._skip_reasons: dict[str, str] = {}
        cap = executor.buffer_size
        self._inbox: dict[Endpoint, Channel] = {}
        self._outbox: dict[Endpoint, list] = defaultdict(list)
        self._loop_inputs = {e.dst for e in graph.edges if e.loop}
        self._remote_in: list[tuple[GraphEdge, Channel]] = []  # edges from other parts into this one
        for edge in graph.edges:
            src_here, dst_here = edge.src.node in self.here, edge.dst.node in self.here
            if dst_here:
                channel = Channel(cap, self.cancelled)
                self._inbox[edge.dst] = channel
                if src_here:
                    self._outbox[edge.src].append(channel)
                else:
                    self._remote_in.append((edge, channel))
            elif src_here:
                self._outbox[edge.src].append(self._remote_sink(edge))
        for name, out in graph.outputs.items():
            if out.src.node in self.here:
                self._outbox[out.src].append(self._output_sink(name))
        for name in self.here:
            node = graph.nodes[name]
            self.stats.nodes[name] = NodeStats(name, node.kind)
        threads = [threading.Thread(target=self._node_main, args=(n,), name=f"og-{n}", daemon=True)
                   for n in graph.topological_order() if n in self.here]
        threads += self._feed_inputs(inputs, cap)
        threads += self._relays()
        self._pending = len(threads)
        self._threads = threads
        for t in threads:
            t.start()

    # -- hooks for executors that split a run across processes --------------------------------------------
    def _remote_sink(self, edge: GraphEdge) -> Any:
        """Where items of an edge leaving this part go (a sink with open/put/close)."""
        raise AssertionError(f"edge {edge} leaves a run that holds every node")

    def _output_sink(self, name: str) -> Any:
        """Where items of graph output `name` go."""
        return _OutputTap(self, name)

    def _relays(self) -> list[threading.Thread]:
        """Threads feeding `self._remote_in` channels from other parts (they call `_thread_done` at the end)."""
        return []

    # -- public ------------------------------------------------------------------------------------------
    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the run to end; the outputs, or NodeFailed naming the node that failed."""
        try:
            for t in self._threads:
                t.join(timeout)
        except KeyboardInterrupt:
            self.cancel()
            raise
        self._raise_if_failed()
        return assemble_result(self.executor.graph, dict(self._outputs), self._skip_reasons, self.stats)

    def cancel(self) -> None:
        """Stop every node at its next channel operation; `result()` then raises RunCancelled."""
        with self._lock:
            self._cancelled_by_caller = self.error is None
        self._stop()

    def _stop(self) -> None:
        self.cancelled.set()
        for channel in self._inbox.values():
            channel.wake()

    # -- internals ---------------------------------------------------------------------------------------
    def _thread_done(self) -> None:
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self.stats.wall = self.stats.now()
            self._events.put(DONE)

    def _fail(self, node: str, kind: str, exc: BaseException) -> None:
        with self._lock:
            if self.error is None and not self._cancelled_by_caller:
                self.error = NodeFailed(node, kind, exc)
        self._stop()

    def _feed_inputs(self, inputs: dict[str, Any], cap: int) -> list[threading.Thread]:
        """Deliver graph inputs; stream targets fed from iterables get a feeder thread each."""
        feeders = []
        for name, decl in self.executor.graph.inputs.items():
            channels = [self._inbox.setdefault(t, Channel(cap, self.cancelled))
                        for t in decl.targets if t.node in self.here]
            if not channels:
                continue
            if name not in inputs:
                for ch in channels:
                    ch.close(absent=True)
                continue
            value = inputs[name]
            items = [value] if isinstance(value, Payload) else value
            if decl.port.is_stream and not isinstance(value, Payload):
                feeders.append(threading.Thread(target=self._feed_stream, args=(decl.port, channels, items),
                                                name=f"og-input-{name}", daemon=True))
                continue
            for ch in channels:
                ch.open()
                ch.put(value)
                ch.close()
        return feeders

    def _feed_stream(self, port: Port, channels: list[Channel], items: Any) -> None:
        try:
            for ch in channels:
                ch.open()
            for item in items:
                _check_item(port, item, "graph input")
                for ch in channels:
                    ch.put(item)
            for ch in channels:
                ch.close()
        except Cancelled:
            pass
        except BaseException as exc:  # a bad item from the caller stops the run like a node failure
            self._fail(f"input:{port.name}", "graph input", exc)
        finally:
            self._thread_done()

    def _node_main(self, name: str) -> None:
        node = self.executor.nodes[name]
        stats = self.stats.nodes[name]
        stats.worker = threading.current_thread().name
        enter_run(RunContext(self.id, name, self.seed, self.cancelled))
        outputs = {p.name: (p, self._outbox.get(Endpoint(name, p.name), [])) for p in node.outputs}
        try:
            kwargs, skip = self._gather(node, stats)
            if skip:
                self._skip_reasons[name] = skip
                stats.skipped = skip
                for _, sinks in outputs.values():
                    for sink in sinks:
                        sink.close(absent=True)
                return
            for _, sinks in outputs.values():
                for sink in sinks:
                    sink.open()
            stats.started = self.stats.now()
            emitted_whole: set[str] = set()
            counts = stats.items_out
            for port_name, item in node.stream(**kwargs):
                entry = outputs.get(port_name)
                if entry is None:
                    raise RuntimeError(f"yielded unknown output port '{port_name}' "
                                       f"(ports: {', '.join(outputs) or 'none'})")
                port, sinks = entry
                _check_item(port, item, "output")
                if not port.is_stream:
                    if port_name in emitted_whole:
                        raise RuntimeError(f"yielded whole-value port '{port_name}' twice")
                    emitted_whole.add(port_name)
                if stats.first_output is None:
                    stats.first_output = self.stats.now()
                counts[port_name] += 1
                for sink in sinks:
                    sink.put(item)
            for port_name, (port, sinks) in outputs.items():
                for sink in sinks:
                    sink.close(absent=not port.is_stream and port_name not in emitted_whole)
        except Cancelled:
            pass
        except BaseException as exc:
            self._fail(name, node.kind, exc)
        finally:
            if stats.started is not None:
                stats.finished = self.stats.now()
            for port in node.inputs:  # unblock producers, whether or not this node read the input
                channel = self._inbox.get(Endpoint(name, port.name))
                if channel is not None:
                    channel.detach()
            self._thread_done()

    def _gather(self, node: Node, stats: NodeStats) -> tuple[dict[str, Any], str | None]:
        """Input values by port name, or a reason to skip the node (a required input is absent)."""
        kwargs: dict[str, Any] = {}
        for port in node.inputs:
            end = Endpoint(node.name, port.name)
            channel = self._inbox.get(end)
            if channel is None:
                kwargs[port.name] = None
                continue
            if port.is_stream:
                present = end in self._loop_inputs or channel.wait_decided()
                kwargs[port.name] = _counted(channel, stats, port.name) if present else None
            else:
                try:
                    kwargs[port.name] = channel.get()
                    stats.items_in[port.name] += 1
                except Absent:
                    kwargs[port.name] = None
            if kwargs[port.name] is None and port.required:
                return kwargs, f"required input '{port.name}' was not produced ({self._upstream(end)})"
        return kwargs, None

    def _upstream(self, end: Endpoint) -> str:
        graph = self.executor.graph
        for edge in graph.edges_into(end.node):
            if edge.dst == end:
                why = self._skip_reasons.get(edge.src.node)
                return f"'{edge.src.node}' was skipped: {why}" if why else f"'{edge.src}' produced nothing"
        for name, decl in graph.inputs.items():
            if end in decl.targets:
                return f"graph input '{name}' was not given"
        return "nothing feeds it"


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


def _counted(channel: Channel, stats: NodeStats, port: str) -> Iterator[Any]:
    counts = stats.items_in
    get = channel.get
    while True:
        try:
            item = get()
        except StopIteration:
            return
        counts[port] += 1
        yield item


def _check_item(port: Port, item: Any, what: str) -> None:
    if not isinstance(item, port.type):
        raise TypeError(f"{what} '{port.name}' carries {port.type.__name__}, got {type(item).__name__}")
