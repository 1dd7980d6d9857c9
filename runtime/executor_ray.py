"""The Ray executor: each stage of a graph (see `placement`) is a Ray actor per replica; streams go actor to actor.

The driver starts a run with one `run_part` call per chosen actor, telling it which peers feed it; the actors
then pull their input streams from each other directly (`ray_stage`). The driver pulls only the graph outputs,
and watches every `run_part` to report the first failure (a node's exception with its remote traceback, or a
dead actor).
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import ray
from ray.exceptions import RayActorError, RayTaskError

from .checkpoint import Checkpoint
from .errors import NodeFailed, RunCancelled, UserError
from .executor_local import OutputEvent, RunResult, assemble_result
from .graph import Graph
from .inputs import prepare_inputs
from .payloads import Payload
from .placement import Stage, check_fits, plan_stages
from .ray_stage import CANCELLED, OPENED, FedInput, StageWorker, output_key
from .stats import RunStats

_DONE = object()
_log = logging.getLogger("omnigraph.ray")
SHUTDOWN_GRACE = 10.0  # seconds `shutdown` waits for cancelled runs to end
CONTROL_THREADS = 8  # actor threads beyond those runs hold: cancel, feed, where


class StageLost(NodeFailed):
    """A stage's actor died during a run (process killed, node lost, out of memory)."""

    def __init__(self, stage: Stage, where: dict[str, Any], error: BaseException):
        self.stage, self.where = stage, where
        nodes = ", ".join(stage.nodes)
        super().__init__(nodes, f"stage {stage.name}", error)
        at = f"actor {where.get('actor_id', '?')[:12]}, pid {where.get('pid', '?')} on {where.get('host', '?')}"
        Exception.__init__(self, f"node '{nodes}' (stage '{stage.name}', {at}) was lost: its Ray actor died during "
                                 f"the run ({_first_line(error)}); the other stages are unaffected and Ray restarts "
                                 f"this one for the next run")


class RayExecutor:
    """Runs a validated graph on a Ray cluster: same interface as `LocalExecutor` (load, start, run)."""

    name = "ray"

    def __init__(self, graph: Graph, *, checkpoint: str | Path | Checkpoint | None = None,
                 address: str | None = None, num_gpus: float | None = None, buffer_size: int = 64,
                 ready_timeout: float = 600.0, runs_per_replica: int = 16):
        """`address`: a cluster to join (default `RAY_ADDRESS`, else start a local one with `num_gpus` logical
        GPUs if given). `checkpoint` must be a path every cluster node can read. A replica serves at most
        `runs_per_replica` runs at once; `start` waits while every replica of a stage is that busy."""
        self.graph = graph
        path = checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint
        self.checkpoint = None if path is None else str(Path(path).expanduser().resolve())
        self.address, self.num_gpus = address, num_gpus
        self.buffer_size, self.ready_timeout = buffer_size, ready_timeout
        self.runs_per_replica = runs_per_replica
        self.stages = plan_stages(graph)
        self.stage_of = {node: s.name for s in self.stages.values() for node in s.nodes}
        self.actors: dict[str, list[Any]] = {}
        self.placed: dict[str, list[dict[str, Any]]] = {}  # stage -> where each replica runs (Ray's view)
        self._active: dict[tuple[str, int], int] = {}
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # a run ended: a replica may have room
        self._runs: set[RayRun] = set()
        self._owns_ray = False

    # -- cluster and actors --------------------------------------------------------------------------------
    def connect(self) -> None:
        """Join the cluster at `address`/`RAY_ADDRESS`, or start a local one (unless Ray is already up)."""
        if ray.is_initialized():
            return
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address:
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError) as exc:
                raise UserError(f"cannot connect to the Ray cluster at '{address}': {exc}") from exc
            self._owns_ray = True
            return
        cpus = sum(s.num_cpus * s.replicas for s in self.stages.values())  # logical: actors mostly wait
        ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(cpus)), num_gpus=self.num_gpus,
                 include_dashboard=False, logging_level=logging.WARNING)
        self._owns_ray = True

    def load(self) -> None:
        """Check the placements fit the cluster, start one actor per stage replica, load their weights."""
        if self.actors:
            return
        self.connect()
        check_fits(self.graph, self.stages, [n["Resources"] for n in ray.nodes() if n["Alive"]])
        short = _short_now(self.stages, ray.available_resources())
        if short:
            _log.warning("the Ray cluster is busy (free now: %s); the stages wait for Ray to free resources, "
                         "for at most %.0f s", short, self.ready_timeout)
        worker = ray.remote(StageWorker)
        loading = {}
        for stage in self.stages.values():
            self.actors[stage.name] = []
            for replica in range(stage.replicas):
                actor = worker.options(
                    num_cpus=stage.num_cpus, num_gpus=stage.num_gpus, memory=stage.memory or None,
                    resources=stage.resources or None, max_restarts=-1,
                    max_concurrency=self.runs_per_replica * self._calls_per_run(stage) + CONTROL_THREADS,
                ).remote(self.graph, stage.name, replica, stage.nodes, self.checkpoint, stage.device,
                         stage.num_gpus, self.buffer_size)
                self.actors[stage.name].append(actor)
                self._active[(stage.name, replica)] = 0
                loading[actor.load.remote()] = (stage, replica)
        ready, pending = ray.wait(list(loading), num_returns=len(loading), timeout=self.ready_timeout)
        try:
            if pending:
                late = ", ".join(f"'{loading[r][0].name}' #{loading[r][1]} (needs {loading[r][0].describe()})"
                                 for r in pending)
                raise UserError(f"Ray did not start stage {late} within {self.ready_timeout:.0f} s: the cluster "
                                f"may be busy or lack a node with those resources")
            for ref in ready:
                stage, replica = loading[ref]
                try:
                    self.placed.setdefault(stage.name, []).append(ray.get(ref))
                except RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    if isinstance(cause, UserError):
                        raise UserError(f"stage '{stage.name}' could not load: {cause}") from None
                    raise RuntimeError(f"stage '{stage.name}' could not load: {type(cause).__name__}: "
                                       f"{cause}") from cause
        except BaseException:
            self.shutdown()
            raise
        for replicas in self.placed.values():
            replicas.sort(key=lambda where: where["replica"])

    def shutdown(self) -> None:
        """Cancel runs still going (waiting a little for them to end), stop the actors, and disconnect from Ray
        if this executor connected (stopping a local instance it started)."""
        with self._lock:
            running = list(self._runs)
        for run in running:
            run.cancel()
        for run in running:
            run.wait(SHUTDOWN_GRACE)
        for actors in self.actors.values():
            for actor in actors:
                ray.kill(actor)
        self.actors.clear()
        self.placed.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- runs ----------------------------------------------------------------------------------------------
    def start(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> RayRun:
        """Begin a run; iterate `RayRun.events()` for outputs as they come, or call `RayRun.result()`."""
        prepared = prepare_inputs(self.graph, inputs)
        self.load()
        return RayRun(self, prepared, seed)

    def run(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> RunResult:
        return self.start(inputs, seed=seed).result()

    def _calls_per_run(self, stage: Stage) -> int:
        """Actor threads one run holds for its whole length: its `run_part` and a `pull` per stream served."""
        here = set(stage.nodes)
        leaving = sum(1 for e in self.graph.edges if e.src.node in here and e.dst.node not in here)
        outputs = sum(1 for o in self.graph.outputs.values() if o.src.node in here)
        return 1 + leaving + outputs

    def acquire(self, run: RayRun) -> dict[str, int]:
        """A replica per stage for a new run: the least busy, round-robin among equals. Waits while every
        replica of some stage serves `runs_per_replica` runs (its actor threads would run out)."""
        turn = next(self._turn)
        with self._freed:
            while any(min(self._active[(name, r)] for r in range(stage.replicas)) >= self.runs_per_replica
                      for name, stage in self.stages.items()):
                self._freed.wait()
            self._runs.add(run)
            chosen = {}
            for name, stage in self.stages.items():
                order = sorted(range(stage.replicas),
                               key=lambda r: (self._active[(name, r)], (r - turn) % stage.replicas))
                chosen[name] = order[0]
                self._active[(name, order[0])] += 1
            return chosen

    def release(self, run: RayRun) -> None:
        with self._freed:
            self._runs.discard(run)
            for name, replica in run.chosen.items():
                self._active[(name, replica)] -= 1
            self._freed.notify_all()


class RayRun:
    """One run on the cluster; the same public interface as the local `Run`."""

    def __init__(self, executor: RayExecutor, inputs: dict[str, Any], seed: int):
        self.executor = executor
        graph = executor.graph
        self.id = uuid.uuid4().hex[:12]
        self.stats = RunStats(self.id, executor.name)
        self.error: BaseException | None = None
        self._cancelled_by_caller = False
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._outputs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._stopping = False
        self.chosen = executor.acquire(self)
        self.handles = {stage: executor.actors[stage][r] for stage, r in self.chosen.items()}
        self.where = {stage: executor.placed[stage][r] for stage, r in self.chosen.items()}
        stage_inputs, fed = self._split_inputs(inputs)
        started_at = time.time()  # stages time their nodes from this instant (wall clock)
        self.stats.t0 = time.perf_counter()
        self._finishing = {handle.run_part.remote(self.id, seed, started_at, stage_inputs[stage], self.handles,
                                                  executor.stage_of): stage
                           for stage, handle in self.handles.items()}
        self._threads = [threading.Thread(target=self._pull_output, args=(name,), daemon=True,
                                          name=f"og-ray-output-{name}") for name in graph.outputs]
        self._threads += [threading.Thread(target=self._feed, args=args, daemon=True, name=f"og-ray-feed-{args[0]}")
                          for args in fed]
        for thread in self._threads:
            thread.start()
        threading.Thread(target=self._monitor, daemon=True, name=f"og-ray-run-{self.id}").start()

    # -- public ------------------------------------------------------------------------------------------
    def events(self) -> Iterator[OutputEvent]:
        """Graph output items as they arrive from the actors; raises NodeFailed if a node or actor fails."""
        while True:
            event = self._events.get()
            if event is _DONE:
                break
            yield event
        self._raise_if_failed()

    def result(self, timeout: float | None = None) -> RunResult:
        try:
            if not self._done.wait(timeout):
                raise TimeoutError(f"run {self.id} still going after {timeout} s")
        except KeyboardInterrupt:
            self.cancel()
            raise
        self._raise_if_failed()
        return assemble_result(self.executor.graph, dict(self._outputs), self._skips, self.stats)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (True), or `timeout` passed (False)."""
        return self._done.wait(timeout)

    def cancel(self) -> None:
        """Stop every stage of this run; `result()` then raises RunCancelled."""
        with self._lock:
            self._cancelled_by_caller = self.error is None
        self._stop_all()

    # -- internals ---------------------------------------------------------------------------------------
    def _split_inputs(self, inputs: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[tuple]]:
        """Per stage, the inputs it needs (object refs, put once); and the lazy streams to feed."""
        graph, stage_of = self.executor.graph, self.executor.stage_of
        per_stage: dict[str, dict[str, Any]] = {stage: {} for stage in self.handles}
        fed = []
        for name, value in inputs.items():
            decl = graph.inputs[name]
            stages = sorted({stage_of[t.node] for t in decl.targets})
            if isinstance(value, Payload) or isinstance(value, (list, tuple)):
                shipped: Any = ray.put(value if isinstance(value, Payload) else list(value))
            else:
                shipped = FedInput(name)
                fed.append((name, decl.port, value, [self.handles[s] for s in stages]))
            for stage in stages:
                per_stage[stage][name] = shipped
        return per_stage, fed

    def _emit(self, name: str, item: Any, is_stream: bool) -> None:
        with self._lock:
            if is_stream:
                self._outputs.setdefault(name, []).append(item)
            else:
                self._outputs[name] = item
            self.stats.first_output.setdefault(name, self.stats.now())
        self._events.put(OutputEvent(name, item))

    def _pull_output(self, name: str) -> None:
        out = self.executor.graph.outputs[name]
        handle = self.handles[self.executor.stage_of[out.src.node]]
        try:
            for ref in handle.pull.options(num_returns="streaming").remote(self.id, output_key(name)):
                message = ray.get(ref)
                if message == OPENED or isinstance(message, tuple):  # opened, or (ABSENT, why): nothing to emit
                    continue
                if message == CANCELLED:
                    self._stop_all()
                    return
                for item in message:
                    self._emit(name, ray.get(item) if isinstance(item, ray.ObjectRef) else item, out.port.is_stream)
        except Exception:  # noqa: BLE001 - the stage's failure is reported by `_monitor`, which sees its cause
            self._stop_all()

    def _feed(self, name: str, port: Any, items: Any, handles: list[Any]) -> None:
        """Relay a lazily produced stream input to the stages reading it, item by item, in order."""
        try:
            for item in items:
                if not isinstance(item, port.type):
                    raise TypeError(f"graph input '{name}' carries {port.type.__name__}, got {type(item).__name__}")
                ray.get([h.feed.remote(self.id, name, [item], False) for h in handles])
            ray.get([h.feed.remote(self.id, name, [], True) for h in handles])
        except Exception as exc:  # noqa: BLE001 - a bad item from the caller stops the run like a node failure
            with self._lock:
                if self.error is None:
                    self.error = NodeFailed(f"input:{name}", "graph input", exc)
            self._stop_all()

    def _stop_all(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        for handle in self.handles.values():
            handle.cancel.remote(self.id)

    def _monitor(self) -> None:
        """Wait for every stage's report; on the first failure stop the others; then merge stats."""
        reports: dict[str, dict[str, Any]] = {}
        lost: dict[str, BaseException] = {}
        self._skips: dict[str, str] = {}
        try:
            self._collect(reports, lost)
            for thread in self._threads:
                thread.join()
            merged = {}
            for report in reports.values():
                merged.update(report["stats"])
                self._skips.update(report["skips"])
            graph = self.executor.graph
            self.stats.nodes = {name: merged[name] for name in graph.topological_order() if name in merged}
        except Exception as exc:  # noqa: BLE001 - e.g. Ray shut down under a run: end the run, never hang
            lost.setdefault("driver", exc)
        finally:
            self.stats.wall = self.stats.now()
            with self._lock:
                self.error = self.error or self._root_cause(reports, lost)
            self.executor.release(self)
            self._done.set()
            self._events.put(_DONE)

    def _collect(self, reports: dict[str, dict[str, Any]], lost: dict[str, BaseException]) -> None:
        pending = dict(self._finishing)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            stage = pending.pop(ready[0])
            try:
                report = ray.get(ready[0])
            except (RayActorError, RayTaskError) as exc:  # the actor died, or its part failed to start
                lost[stage] = exc
                self._stop_all()
                continue
            reports[stage] = report
            if report.get("where"):  # after a restart the actor has a new process
                self.executor.placed[stage][self.chosen[stage]] = report["where"]
            if report["error"] or report["peer"]:
                self._stop_all()

    def _root_cause(self, reports: dict[str, dict[str, Any]], lost: dict[str, BaseException]) -> BaseException | None:
        """A node's own exception first, then a lost actor, then anything else that stopped a stage."""
        for report in reports.values():
            if report["error"]:
                e = report["error"]
                return NodeFailed(e["node"], e["kind"], e["error"], remote_traceback=e["traceback"])
        for stage, exc in lost.items():
            if stage == "driver":
                return RuntimeError(f"the driver lost track of run {self.id}: {type(exc).__name__}: {exc}")
            cause = exc.cause if isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException) else None
            if cause is not None:  # the part failed to start (e.g. reloading weights after a restart)
                return NodeFailed(", ".join(self.executor.stages[stage].nodes), f"stage {stage}", cause)
            return StageLost(self.executor.stages[stage], self.where[stage], exc)
        for report in reports.values():
            if report["peer"] and not self._cancelled_by_caller:
                return RuntimeError(report["peer"])
        return None

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            cause = getattr(self.error, "error", None)
            raise self.error from cause
        if self._cancelled_by_caller:
            raise RunCancelled(f"run {self.id} was cancelled")


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast on a plain `host:port` nobody listens at (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # `auto`, `ray://...` and other forms are Ray's to resolve
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"no Ray cluster answers at '{address}' ({exc.strerror or exc}); start one with "
                        f"`ray start --head`, or check --ray-address / RAY_ADDRESS") from None


def _short_now(stages: dict[str, Stage], free: dict[str, float]) -> str:
    """Resources the stages need that the cluster does not have free right now ('' if none)."""
    need: dict[str, float] = {}
    for stage in stages.values():
        for k, v in stage.demand().items():
            need[k] = need.get(k, 0.0) + v * stage.replicas
    return ", ".join(f"{k} {free.get(k, 0.0):g} of {v:g} needed" for k, v in need.items() if free.get(k, 0.0) < v)


def _first_line(error: BaseException) -> str:
    """The informative part of Ray's multi-line actor-death message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "died" in line or "killed" in line or "exit" in line.lower()]
    return (useful or lines or [type(error).__name__])[0]
