"""The Ray actor hosting one stage: loads its nodes once, runs its part of each run, serves its streams to peers.

Streams leave a stage through `pull`, a streaming generator the consuming stage (or the driver) iterates: items
travel in lists (whatever is queued when the consumer asks, so a fast producer is batched and a slow one is not
delayed) after an `OPENED` message; a value never produced is a lone `(ABSENT, why)`; a stopped producer ends
its streams with `CANCELLED`. Whole values travel as object refs made once per value.
"""
from __future__ import annotations

import os
import queue
import socket
import threading
import time
import traceback
from collections import Counter, OrderedDict
from typing import Any, Iterator

import ray

from .channels import Absent, Cancelled, Channel
from .device import choose_device
from .graph import Graph, GraphEdge
from .loops import fuse_loops
from .ray_tensors import register as register_tensor_serializer
from .run_part import RunPart
from .spec import Endpoint
from .stats import RunStats

OPENED, ABSENT = "opened", "absent"  # control messages at the head of a pulled stream (ABSENT in a tuple with why)
CANCELLED = "cancelled"  # the producing part of the run was stopped (failure elsewhere, or the caller)
BATCH = 256  # most items per pulled message
ENDED_KEPT = 4096  # finished run ids remembered per actor


def edge_key(edge: GraphEdge) -> str:
    return f"{edge.src}->{edge.dst}"


def output_key(name: str) -> str:
    return f"output:{name}"


class FedInput:
    """Marks a stream input the driver feeds item by item (`StageWorker.feed`), for lazy iterables."""


class StageWorker:
    """One replica of one stage. Wrapped by `ray.remote` in `executor_ray`; every method is thread-safe."""

    name = "ray"

    def __init__(self, graph: Graph, stage: str, replica: int, nodes: list[str], checkpoint: str | None,
                 device: str, num_gpus: float, buffer_size: int):
        self.graph = graph
        self.stage, self.replica = stage, replica
        self.here = frozenset(nodes)
        self.nodes = {name: graph.nodes[name].build() for name in nodes}
        self.checkpoint_path = checkpoint
        self.checkpoint: Any = None
        self.device_hint, self.num_gpus = device, num_gpus
        self.device = "cpu"
        self.buffer_size = buffer_size
        self._runs: dict[str, StageRun | BaseException] = {}
        self._cancelled: set[str] = set()
        self._ended: OrderedDict[str, None] = OrderedDict()  # recent finished runs: late calls return at once
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self._loaded = False
        self._where: dict[str, Any] | None = None
        register_tensor_serializer()

    # -- setup -------------------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """Load this stage's nodes (only their weights); returns where the actor runs."""
        with self._load_lock:
            if self._loaded:
                return self.where()
            if self.checkpoint is None and self.checkpoint_path is not None:
                from .checkpoint import Checkpoint

                self.checkpoint = Checkpoint.open(self.checkpoint_path)
            self.device = choose_device(self.device_hint, reserved_gpus=self.num_gpus,
                                        what=f"stage '{self.stage}' asks for device 'cuda'")
            for name in self.graph.topological_order():
                if name in self.here:
                    self.nodes[name].load(self.device, self.checkpoint)
            fuse_loops(self.graph, self.nodes, self.here)
            self._loaded = True
        return self.where()

    def where(self) -> dict[str, Any]:
        """This actor as Ray sees it: actor and node ids, assigned GPU ids, process, device (fixed per process)."""
        if self._where is None or self._where["device"] != self.device:
            ctx = ray.get_runtime_context()
            self._where = {"stage": self.stage, "replica": self.replica, "actor_id": ctx.get_actor_id(),
                           "node_id": ctx.get_node_id(), "gpu_ids": list(ctx.get_accelerator_ids().get("GPU", [])),
                           "resources": ctx.get_assigned_resources(), "pid": os.getpid(),
                           "host": socket.gethostname(), "device": self.device, "nodes": sorted(self.here)}
        return dict(self._where)

    # -- runs --------------------------------------------------------------------------------------------
    @ray.method(enable_task_events=False)
    def run_part(self, run_id: str, seed: int, started_at: float, inputs: dict[str, Any],
                 peers: dict[str, Any], stage_of: dict[str, str]) -> dict[str, Any]:
        """This stage's part of a run, start to end: its stats, skips and any failure (one call per run)."""
        entry: StageRun | BaseException | None = None
        try:
            self.load()
            values = {name: _resolve_input(value) for name, value in inputs.items()}
            if not self._is_cancelled(run_id):  # built unlocked: concurrent runs start in parallel
                entry = StageRun(self, values, seed, run_id, started_at, peers, stage_of)
        except BaseException as exc:  # raised to the driver, which names this stage
            entry = exc
        with self._cond:
            if entry is not None:
                self._runs[run_id] = entry
            cancelled = run_id in self._cancelled
            self._cond.notify_all()
        if cancelled and isinstance(entry, StageRun):  # `cancel` came while the part was being built
            entry.cancel()
        try:
            if isinstance(entry, BaseException):
                raise entry
            if entry is None:
                return {"cancelled": True, "stats": {}, "skips": {}, "error": None, "peer": None}
            return entry.report()
        finally:
            with self._cond:
                self._runs.pop(run_id, None)
                self._cancelled.discard(run_id)
                self._ended[run_id] = None
                while len(self._ended) > ENDED_KEPT:
                    self._ended.popitem(last=False)
                self._cond.notify_all()

    @ray.method(enable_task_events=False)
    def pull(self, run_id: str, key: str) -> Iterator[Any]:
        """Stream the items of one outgoing edge or graph output (see the module docstring)."""
        run = self._wait_run(run_id)
        if run is None:
            return
        channel = run.outbound[key]
        try:
            if not channel.wait_decided():  # never produced: say why, as the local executor would
                yield (ABSENT, run.skip_reason(key))
                return
            yield OPENED
            while True:
                try:
                    yield channel.get_many(BATCH)
                except (StopIteration, Absent):
                    return
        except Cancelled:  # a message, not an exception: Ray would log errors no one reads as unhandled
            yield CANCELLED
        finally:
            run.pulled(key)

    @ray.method(enable_task_events=False)
    def feed(self, run_id: str, name: str, items: list[Any], end: bool) -> None:
        """Items of a stream input the driver relays from a lazy iterable (see `FedInput`)."""
        run = self._wait_run(run_id)
        if run is not None:
            run.fed[name].extend(items, end)

    @ray.method(enable_task_events=False)
    def cancel(self, run_id: str) -> None:
        with self._cond:
            if run_id not in self._ended:
                self._cancelled.add(run_id)
            run = self._runs.get(run_id)
            self._cond.notify_all()
        if isinstance(run, StageRun):
            run.cancel()

    def _is_cancelled(self, run_id: str) -> bool:
        with self._cond:
            return run_id in self._cancelled

    def _wait_run(self, run_id: str) -> StageRun | None:
        """The run once `run_part` registered it; None if it was cancelled or ended first. Re-raises a failed
        start."""
        with self._cond:
            while run_id not in self._runs:
                if run_id in self._cancelled or run_id in self._ended:
                    return None
                self._cond.wait(1.0)
            entry = self._runs[run_id]
        if isinstance(entry, BaseException):
            raise entry
        return entry


class StageRun:
    """This stage's part of one run (a `RunPart` of its nodes); edges to other stages are served by `pull` and
    fed by relays that pull from the producing stage."""

    def __init__(self, worker: StageWorker, inputs: dict[str, Any], seed: int, run_id: str, started_at: float,
                 peers: dict[str, Any], stage_of: dict[str, str]):
        self.worker, self.id = worker, run_id
        self.peers, self.stage_of = peers, stage_of
        self.outbound: dict[str, Channel] = {}
        self._outbound_src: dict[str, Endpoint] = {}
        self.peer_error: str | None = None
        self._unpulled: set[str] = set()
        self._pull_cond = threading.Condition()
        self._refs: dict[Endpoint, Any] = {}
        stats = RunStats(run_id, worker.name)
        stats.t0 -= time.time() - started_at  # the run began on the driver: time from then (wall clock)
        graph = worker.graph
        self.part = part = RunPart(graph, worker.nodes, run_id=run_id, seed=seed, stats=stats,
                                   buffer_size=worker.buffer_size, here=worker.here)
        self.fed = {name: _FedQueue(part.cancelled) for name, v in inputs.items() if isinstance(v, FedInput)}
        for fed in self.fed.values():
            part.wake_on_stop(fed)
        inputs = {name: self.fed.get(name, value) for name, value in inputs.items()}
        leaving = [(edge_key(edge), edge.src, edge.port) for edge in part.leaving]
        leaving += [(output_key(name), graph.outputs[name].src, graph.outputs[name].port) for name in part.outputs]
        readers = Counter(src for _, src, _ in leaving)
        for key, src, port in leaving:
            part.connect(src, self._outbound(key, src, port.is_stream, shared=readers[src] > 1))
        part.start(inputs, relay=self._relay)

    def cancel(self) -> None:
        self.part.cancel()

    # -- outbound ------------------------------------------------------------------------------------------
    def _outbound(self, key: str, src: Endpoint, is_stream: bool, shared: bool) -> Any:
        """The sink of one outgoing edge or graph output. A whole value read elsewhere more than once travels as
        one object ref; read once, it travels in the pulled message (Ray stores a large one in its object store)."""
        channel = self.part.channel()  # woken when the part stops, so `pull` generators waiting on it end
        self.outbound[key] = channel
        self._outbound_src[key] = src
        self._unpulled.add(key)
        return _ByRef(channel, self, src) if shared and not is_stream else channel

    def object_ref(self, src: Endpoint, item: Any) -> Any:
        """The object ref of a whole value (a port emits one per run), made once for every stage reading it."""
        ref = self._refs.get(src)
        if ref is None:
            ref = self._refs[src] = ray.put(item)
        return ref

    def skip_reason(self, key: str) -> str | None:
        """Why the node feeding outgoing stream `key` was skipped, if it was."""
        return self.part.skip_reason(self._outbound_src[key].node)

    def pulled(self, key: str) -> None:
        with self._pull_cond:
            self._unpulled.discard(key)
            self._pull_cond.notify_all()

    # -- inbound -------------------------------------------------------------------------------------------
    def _relay(self, edge: GraphEdge, channel: Channel) -> None:
        """Copy a stream from the producing stage into this stage's channel, in order."""
        try:
            peer = self.peers[self.stage_of[edge.src.node]]
            for ref in peer.pull.options(num_returns="streaming").remote(self.id, edge_key(edge)):
                message = ray.get(ref)
                if message == OPENED:
                    channel.open()
                elif isinstance(message, tuple) and message[0] == ABSENT:
                    if message[1]:
                        self.part.note_skip(edge.src.node, message[1])
                    channel.close(absent=True)
                    return
                elif message == CANCELLED:
                    raise ConnectionAbortedError("its part of the run was stopped")
                else:
                    for item in message:
                        channel.put(ray.get(item) if isinstance(item, ray.ObjectRef) else item)
            channel.close()
        except Cancelled:
            pass
        except BaseException as exc:  # the producing stage failed or died: stop this part too
            if not self.part.cancelled.is_set():
                self.peer_error = f"stage '{self.stage_of[edge.src.node]}' stopped sending {edge}: {exc}"
            self.part.stop()

    # -- the end -------------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """Block until this part ended and every outgoing stream was read; what the driver needs to know."""
        part = self.part
        part.wait()
        with self._pull_cond:
            while self._unpulled and not part.cancelled.is_set():
                self._pull_cond.wait(0.5)
        where = self.worker.where()
        for stats in part.stats.nodes.values():
            stats.worker = f"{where['stage']}#{where['replica']} pid {where['pid']} on {where['host']}"
            stats.actor, stats.ray_node = where["actor_id"], where["node_id"]
        error = None
        if part.error is not None:
            cause = part.error.error
            error = {"node": part.error.node, "kind": part.error.kind, "error": _portable(cause),
                     "traceback": "".join(traceback.format_exception(cause))}
        return {"stats": part.stats.nodes, "skips": part.skip_reasons, "error": error,
                "peer": self.peer_error, "cancelled": part.cancelled_by_caller, "where": where}


class _ByRef:
    """A sink for a whole value leaving the stage: sends an object ref instead of the value."""

    def __init__(self, channel: Channel, run: StageRun, src: Endpoint):
        self.channel, self.run, self.src = channel, run, src

    def open(self) -> None:
        self.channel.open()

    def put(self, item: Any) -> None:
        self.channel.put(self.run.object_ref(self.src, item))

    def close(self, *, absent: bool = False) -> None:
        self.channel.close(absent=absent)


class _FedQueue:
    """A stream input's items as the driver feeds them (unbounded: `feed` never blocks an actor thread); iterating
    raises Cancelled once the part stopped, even while the driver sends nothing more."""

    def __init__(self, cancelled: threading.Event) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cancelled = cancelled

    def extend(self, items: list[Any], end: bool) -> None:
        for item in items:
            self._queue.put((item,))
        if end:
            self._queue.put(None)

    def wake(self) -> None:
        self._queue.put(())

    def __iter__(self) -> Iterator[Any]:
        while (entry := self._queue.get()) is not None:
            if self._cancelled.is_set():
                raise Cancelled
            if entry:
                yield entry[0]


def _resolve_input(value: Any) -> Any:
    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    import cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure: keep the message
        return RuntimeError(f"{type(exc).__name__}: {exc}")
