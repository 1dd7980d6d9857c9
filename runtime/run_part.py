"""A part of one run: the run's nodes that live in this process, a thread each, bounded channels between them.

The local executor runs every node of a graph in one part; the Ray executor runs one part per stage actor. Edges
with both ends in the part are channels; whoever hosts the part wires the rest through its public interface:
`connect` a sink to each edge leaving the part and each graph output (`leaving`, `outputs`), and `start` with a
`relay` that fills the channel of each edge entering it (`entering`).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator, Protocol

from .channels import Absent, Cancelled, Channel
from .context import RunContext, enter_run
from .daemon_threads import start_daemon, stop_at_exit
from .device import adopt_thread_count
from .errors import NodeFailed
from .graph import Graph, GraphEdge
from .node import Node
from .payloads import Payload
from .ports import Port
from .spec import Endpoint
from .stats import NodeStats, RunStats


class Sink(Protocol):
    """Where a node's items for one edge or graph output go."""

    def open(self) -> None: ...

    def put(self, item: Any) -> None: ...

    def close(self, *, absent: bool = False) -> None: ...


Relay = Callable[[GraphEdge, Channel], None]  # fills an entering edge's channel; may raise Cancelled when stopped


class RunPart:
    """The nodes `here` of one run; shares only the loaded `nodes` with other runs.

    `error` is the first failure (NodeFailed), `cancelled` is set once the part stops (failure, `stop` or
    `cancel`), `cancelled_by_caller` says whether `cancel` stopped it before any failure.
    """

    def __init__(self, graph: Graph, nodes: dict[str, Node], *, run_id: str, seed: int, stats: RunStats,
                 buffer_size: int, here: Iterable[str] | None = None):
        self.graph, self.nodes = graph, nodes
        self.id, self.seed, self.stats = run_id, seed, stats
        self.buffer_size = buffer_size
        self.here = frozenset(graph.nodes if here is None else here)
        self.cancelled = threading.Event()
        self.ended = threading.Event()
        self.error: NodeFailed | None = None
        self.cancelled_by_caller = False
        self.leaving: list[GraphEdge] = []  # edges from a node here to a node elsewhere: `connect` a sink to each
        self.entering: list[tuple[GraphEdge, Channel]] = []  # edges from elsewhere: `start`'s relay fills each
        self.outputs = [name for name, out in graph.outputs.items() if out.src.node in self.here]
        self._lock = threading.Lock()
        self._skip_reasons: dict[str, str] = {}
        self._woken: list[Any] = []  # what to wake on stop beyond the inboxes (anything with `wake()`)
        self._inbox: dict[Endpoint, Channel] = {}
        self._outbox: dict[Endpoint, list[Sink]] = defaultdict(list)
        self._loop_inputs = {e.dst for e in graph.edges if e.loop}
        self._threads: list[threading.Thread] = []
        self._on_end: Callable[[], None] | None = None
        for edge in graph.edges:
            src_here, dst_here = edge.src.node in self.here, edge.dst.node in self.here
            if dst_here:
                channel = self._inbox[edge.dst] = Channel(buffer_size, self.cancelled)
                if src_here:
                    self._outbox[edge.src].append(channel)
                else:
                    self.entering.append((edge, channel))
            elif src_here:
                self.leaving.append(edge)
        for name in graph.topological_order():
            if name in self.here:
                node = nodes[name]
                stats.nodes[name] = NodeStats(name, node.kind, device=node.device or "", dtype=_dtype_name(node))

    # -- wiring (before `start`) ---------------------------------------------------------------------------
    def connect(self, src: Endpoint, sink: Sink) -> None:
        """Send the items of output port `src` (of a node here) to `sink` too: an edge leaving, or a graph output."""
        self._outbox[src].append(sink)

    def channel(self) -> Channel:
        """A channel bounded like the part's own, that stops (and wakes its waiters) when the part stops."""
        channel = Channel(self.buffer_size, self.cancelled)
        self.wake_on_stop(channel)
        return channel

    def wake_on_stop(self, waiter: Any) -> None:
        """Call `waiter.wake()` when the part stops (after `cancelled` is set): e.g. a queue an input waits on."""
        self._woken.append(waiter)

    def start(self, inputs: dict[str, Any], *, relay: Relay | None = None,
              on_end: Callable[[], None] | None = None) -> None:
        """Start a thread per node, per lazily fed stream input and per entering edge (`relay(edge, channel)`);
        `on_end` runs once, when the last of them ended (after `ended` is set)."""
        if self.entering and relay is None:
            raise AssertionError(f"edges enter part {sorted(self.here)} of run {self.id} but nothing relays them")
        self._on_end = on_end
        starts = [(self._node_main, f"og-{n}", (n,)) for n in self.graph.topological_order() if n in self.here]
        starts += self._feed_inputs(inputs)
        starts += [(self._relay_main, f"og-relay-{edge.dst}", (relay, edge, channel))
                   for edge, channel in self.entering]
        self._pending = len(starts)
        stop_at_exit(self)
        self._threads = [start_daemon(target, name, args) for target, name, args in starts]

    # -- control and state ---------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until every thread of the part ended (True), or `timeout` seconds passed (False)."""
        return self.ended.wait(timeout)

    def cancel(self) -> None:
        """The caller's stop: every node stops at its next channel operation; no failure is recorded after it."""
        with self._lock:
            self.cancelled_by_caller = self.error is None
        self.stop()

    def stop(self) -> None:
        """Stop every node at its next channel operation (a failure here or elsewhere)."""
        self.cancelled.set()
        for channel in (*self._inbox.values(), *self._woken):
            channel.wake()

    def fail(self, node: str, kind: str, exc: BaseException) -> None:
        """Record the part's first failure (unless the caller cancelled first) and stop the part."""
        with self._lock:
            if self.error is None and not self.cancelled_by_caller:
                self.error = NodeFailed(node, kind, exc)
        self.stop()

    @property
    def skip_reasons(self) -> dict[str, str]:
        """Node -> why it was skipped, for the nodes here and the remote ones `note_skip` told of."""
        return dict(self._skip_reasons)

    def skip_reason(self, node: str) -> str | None:
        return self._skip_reasons.get(node)

    def note_skip(self, node: str, why: str) -> None:
        """A node elsewhere was skipped: nodes here missing its output say why."""
        self._skip_reasons.setdefault(node, why)

    # -- threads -------------------------------------------------------------------------------------------
    def _thread_done(self) -> None:
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self.stats.wall = self.stats.now()
            self.ended.set()
            if self._on_end is not None:
                self._on_end()

    def _relay_main(self, relay: Relay, edge: GraphEdge, channel: Channel) -> None:
        try:
            relay(edge, channel)
        except Cancelled:
            pass
        except BaseException as exc:  # a relay should report its own failures; never leave the part hanging
            self.fail(f"edge:{edge}", "relay", exc)
        finally:
            self._thread_done()

    def _feed_inputs(self, inputs: dict[str, Any]) -> list[tuple[Callable[..., None], str, tuple]]:
        """Deliver graph inputs; -> (target, name, args) of a feeder thread for each stream target fed from an
        iterable."""
        feeders = []
        for name, decl in self.graph.inputs.items():
            channels = [self._inbox.setdefault(t, Channel(self.buffer_size, self.cancelled))
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
                feeders.append((self._feed_stream, f"og-input-{name}", (name, decl.port, channels, items)))
                continue
            for ch in channels:
                ch.open()
                ch.put(value)
                ch.close()
        return feeders

    def _feed_stream(self, name: str, port: Port, channels: list[Channel], items: Any) -> None:
        try:
            for ch in channels:
                ch.open()
            for item in items:
                check_item(port, item, f"graph input '{name}'")
                for ch in channels:
                    ch.put(item)
            for ch in channels:
                ch.close()
        except Cancelled:
            pass
        except BaseException as exc:  # a bad item from the caller stops the run like a node failure
            self.fail(f"input:{name}", "graph input", exc)
        finally:
            self._thread_done()

    def _node_main(self, name: str) -> None:
        node = self.nodes[name]
        stats = self.stats.nodes[name]
        stats.worker = threading.current_thread().name
        adopt_thread_count()
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
                check_item(port, item, f"output '{port.name}'")
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
            self.fail(name, node.kind, exc)
        finally:
            if stats.started is not None:
                stats.finished = self.stats.now()
            for port in node.inputs:  # unblock producers, whether or not this node read the input
                channel = self._inbox.get(Endpoint(name, port.name))
                if channel is not None:
                    channel.detach()
            self._thread_done()

    def _gather(self, node: Node, stats: NodeStats) -> tuple[dict[str, Any], str | None]:
        """Input values by port name, or a reason to skip the node: a required input is absent, or every
        connected input is absent because the nodes feeding them were skipped (nothing reached the node)."""
        kwargs: dict[str, Any] = {}
        skipped_sources: list[str] = []
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
            sources = [e.src.node for e in self.graph.edges_into(node.name) if e.dst == end]
            # "" where an input came, or is absent for another reason (a graph input not given): the node runs
            skipped_sources.append(sources[0] if kwargs[port.name] is None and sources
                                   and sources[0] in self._skip_reasons else "")
        if skipped_sources and all(skipped_sources):
            return kwargs, f"nothing reached it ('{skipped_sources[0]}' was skipped: " \
                           f"{self._skip_reasons[skipped_sources[0]]})"
        return kwargs, None

    def _upstream(self, end: Endpoint) -> str:
        for edge in self.graph.edges_into(end.node):
            if edge.dst == end:
                why = self._skip_reasons.get(edge.src.node)
                return f"'{edge.src.node}' was skipped: {why}" if why else f"'{edge.src}' produced nothing"
        for name, decl in self.graph.inputs.items():
            if end in decl.targets:
                return f"graph input '{name}' was not given"
        return "nothing feeds it"


def check_item(port: Port, item: Any, what: str) -> None:
    """TypeError unless `item` is of the port's payload type; `what` names the port in the message."""
    if not isinstance(item, port.type):
        raise TypeError(f"{what} carries {port.type.__name__}, got {type(item).__name__}")


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


def _dtype_name(node: Node) -> str | None:
    return None if node.dtype is None else str(node.dtype).removeprefix("torch.")
