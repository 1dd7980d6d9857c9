"""The Ray executor: each stage of a graph (see `placement`) is a Ray actor per replica; streams go actor to actor.

This module is the executor: cluster connection, placement check, actors, and choosing replicas for runs.
A run (`ray_run`) makes one `run_part` call per chosen actor, telling it which peers feed it; the actors then
pull their input streams from each other directly (`ray_stage`), and the driver pulls only the graph outputs.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayTaskError

from .checkpoint import Checkpoint
from .checkpoint_needs import require_checkpoint
from .errors import RunCancelled, UserError
from .executor import cancel_runs
from .graph import Graph
from .inputs import prepare_inputs
from .placement import Stage, check_fits, plan_stages, total_demand
from .ray_run import RayRun
from .ray_stage import StageWorker
from .ray_tensors import register as register_tensor_serializer
from .run_result import RunResult

_log = logging.getLogger("omnigraph.ray")
CONTROL_THREADS = 8  # actor threads beyond those runs hold: cancel, feed, where
RUNS_PER_REPLICA = 16  # runs a replica serves at once when none of its nodes has a `max_batch`


class RayExecutor:
    """Runs a validated graph on a Ray cluster: the same contract as `LocalExecutor` (see `executor`)."""

    name = "ray"

    def __init__(self, graph: Graph, *, checkpoint: str | Path | Checkpoint | None = None,
                 address: str | None = None, num_gpus: float | None = None, buffer_size: int = 64,
                 ready_timeout: float = 600.0, runs_per_replica: int | None = None, device: str = "auto"):
        """`address`: a cluster to join (default `RAY_ADDRESS`, else start a local one with `num_gpus` logical
        GPUs if given). `checkpoint` must be a path every cluster node can read. A replica serves at most
        `runs_per_replica` runs at once (default: the largest `max_batch` of its nodes' configs, so a stage's
        capacity is replicas x batch; 16 for a stage without batching nodes); `start` waits while every replica
        of a stage is that busy. `device`: for stages whose placement says `auto` (`auto`: CUDA when the stage
        reserved a GPU torch sees)."""
        self.graph = graph
        self.device = device
        path = checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint
        self.checkpoint = None if path is None else str(Path(path).expanduser().resolve())
        self.address, self.num_gpus = address, num_gpus
        self.buffer_size, self.ready_timeout = buffer_size, ready_timeout
        self.stages = plan_stages(graph)
        self.runs_per_replica = {name: runs_per_replica or _batch_of(graph, stage)
                                 for name, stage in self.stages.items()}  # stage -> runs one replica serves
        self.stage_of = {node: s.name for s in self.stages.values() for node in s.nodes}
        self.actors: dict[str, list[Any]] = {}
        self.placed: dict[str, list[dict[str, Any]]] = {}  # stage -> where each replica runs (Ray's view)
        self._active: dict[tuple[str, int], int] = {}
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # a run ended: a replica may have room
        self._runs: set[RayRun] = set()
        self._lost: set[tuple[str, int]] = set()  # replicas whose actor died: Ray may still be restarting them
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

    def check_cluster(self) -> None:
        """Connect, and raise GraphValidationError if the cluster cannot hold the stages (starts nothing)."""
        self.connect()
        check_fits(self.graph, self.stages, [n["Resources"] for n in ray.nodes() if n["Alive"]])

    def load(self, stop: threading.Event | None = None) -> None:
        """Check the placements fit the cluster, start one actor per stage replica, load their weights. When
        `stop` is set, stop the actors and raise RunCancelled. A node that needs a checkpoint and has none is a
        located MissingCheckpoint before any actor starts (`check_cluster` alone needs none)."""
        if self.actors:
            return
        require_checkpoint(self.graph, self.checkpoint)
        self.check_cluster()
        register_tensor_serializer()
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
                    max_concurrency=self.runs_per_replica[stage.name] * self._calls_per_run(stage) + CONTROL_THREADS,
                ).remote(self.graph, stage.name, replica, stage.nodes, self.checkpoint,
                         self.device if stage.device == "auto" else stage.device, stage.num_gpus, self.buffer_size)
                self.actors[stage.name].append(actor)
                self._active[(stage.name, replica)] = 0
                loading[actor.load.remote()] = (stage, replica)
        try:
            ready, pending = _wait_loaded(list(loading), self.ready_timeout, stop)
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
        cancel_runs(running)
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
            while any(min(self._active[(name, r)] for r in range(stage.replicas)) >= self.runs_per_replica[name]
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

    def mark_lost(self, stage: str, replica: int) -> None:
        """A run saw this replica's actor die: the next run waits for Ray to bring it back (`wait_restarted`)."""
        with self._lock:
            self._lost.add((stage, replica))

    def wait_restarted(self, chosen: dict[str, int]) -> None:
        """Wait, at most `ready_timeout`, until every chosen replica whose actor died answers again (reloaded);
        a replica Ray cannot restart is a clear error, not a run that fails on a restarting actor."""
        with self._lock:
            lost = [(stage, r) for stage, r in chosen.items() if (stage, r) in self._lost]
        deadline = time.monotonic() + self.ready_timeout
        for stage, replica in lost:
            actor, pause = self.actors[stage][replica], 0.01
            while True:
                left = deadline - time.monotonic()
                try:
                    where = ray.get(actor.load.remote(), timeout=max(left, 0.001))
                    break
                except (ActorUnavailableError, GetTimeoutError) as exc:  # still restarting: try again, bounded
                    if time.monotonic() >= deadline:
                        raise RuntimeError(f"stage '{stage}' #{replica} did not come back within "
                                           f"{self.ready_timeout:.0f} s after its actor died") from exc
                    threading.Event().wait(min(pause, max(left, 0.0)))  # back off between polls
                    pause = min(pause * 2, 0.5)
                except RayActorError as exc:
                    raise RuntimeError(f"stage '{stage}' #{replica} is gone and Ray cannot restart it: "
                                       f"{exc}") from exc
            with self._lock:
                self._lost.discard((stage, replica))
                self.placed[stage][replica] = where

    def release(self, run: RayRun) -> None:
        with self._freed:
            self._runs.discard(run)
            for name, replica in run.chosen.items():
                self._active[(name, replica)] -= 1
            self._freed.notify_all()


def _batch_of(graph: Graph, stage: Stage) -> int:
    """Runs one replica of `stage` serves at once: the largest `max_batch` of its nodes (what their batching
    engines compute together), or RUNS_PER_REPLICA when none batches."""
    batches = [graph.nodes[n].config.max_batch for n in stage.nodes if hasattr(graph.nodes[n].config, "max_batch")]
    return max(batches, default=RUNS_PER_REPLICA)


def _wait_loaded(refs: list[Any], timeout: float, stop: threading.Event | None) -> tuple[list[Any], list[Any]]:
    """`ray.wait` for every ref, in slices so that `stop` ends the wait (RunCancelled) within a fraction of a second."""
    deadline = time.monotonic() + timeout
    ready: list[Any] = []
    pending = refs
    while pending and time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise RunCancelled("loading was cancelled")
        left = max(0.0, deadline - time.monotonic())
        more, pending = ray.wait(pending, num_returns=len(pending), timeout=min(0.25, left))
        ready += more
    return ready, pending


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
    need = total_demand(stages)
    return ", ".join(f"{k} {free.get(k, 0.0):g} of {v:g} needed" for k, v in need.items() if free.get(k, 0.0) < v)
