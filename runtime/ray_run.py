"""One run on the Ray executor, seen from the driver: start every stage's part, relay graph outputs to the
caller as they arrive, and turn the stages' reports into a result or the first failure."""
from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from .daemon_threads import start_daemon
from .errors import NodeFailed
from .payloads import Payload
from .placement import Stage
from .run_outputs import RunOutputs
from .run_part import check_item
from .ray_stage import CANCELLED, OPENED, FedInput, output_key
from .stats import RunStats

if TYPE_CHECKING:
    from .executor_ray import RayExecutor

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


class RayRun(RunOutputs):
    """One run on the cluster; the same public interface as the local `Run`."""

    def __init__(self, executor: RayExecutor, inputs: dict[str, Any], seed: int):
        self.executor = executor
        self.graph = graph = executor.graph
        self.id = uuid.uuid4().hex[:12]
        self.stats = RunStats(self.id, executor.name)
        self._init_outputs(graph)
        self._stopping = False
        self._skips: dict[str, str] = {}
        self.chosen = executor.acquire(self)
        try:
            executor.wait_restarted(self.chosen)
        except BaseException:
            executor.release(self)
            raise
        self.handles = {stage: executor.actors[stage][r] for stage, r in self.chosen.items()}
        self.where = {stage: executor.placed[stage][r] for stage, r in self.chosen.items()}
        stage_inputs, fed = self._split_inputs(inputs)
        started_at = time.time()  # stages time their nodes from this instant (wall clock)
        self.stats.t0 = time.perf_counter()
        self._finishing = {handle.run_part.remote(self.id, seed, started_at, stage_inputs[stage], self.handles,
                                                  executor.stage_of): stage
                           for stage, handle in self.handles.items()}
        self._threads = [start_daemon(self._pull_output, f"og-ray-output-{name}", (name,)) for name in graph.outputs]
        self._threads += [start_daemon(self._feed, f"og-ray-feed-{args[0]}", args) for args in fed]
        start_daemon(self._monitor, f"og-ray-run-{self.id}")

    # -- public (and `result`, `wait`, `events` of RunOutputs) ---------------------------------------------
    def cancel(self) -> None:
        """Stop every stage of this run; `result()` then raises RunCancelled (nothing changes once it ended)."""
        with self._lock:
            if self._ended.is_set():
                return
            self._cancelled_by_caller = self.error is None
        self._stop_all()

    # -- internals ---------------------------------------------------------------------------------------
    def _skip_reasons(self) -> dict[str, str]:
        return self._skips

    def _split_inputs(self, inputs: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[tuple]]:
        """Per stage, the inputs it needs (in the call, or an object ref put once if several stages read it); and
        the lazy streams to feed."""
        graph, stage_of = self.executor.graph, self.executor.stage_of
        per_stage: dict[str, dict[str, Any]] = {stage: {} for stage in self.handles}
        fed = []
        for name, value in inputs.items():
            decl = graph.inputs[name]
            stages = sorted({stage_of[t.node] for t in decl.targets})
            if isinstance(value, Payload) or isinstance(value, (list, tuple)):
                shipped: Any = value if isinstance(value, Payload) else list(value)
                if len(stages) > 1:  # one copy in the object store for every stage reading it
                    shipped = ray.put(shipped)
            else:
                shipped = FedInput()
                fed.append((name, decl.port, value, [self.handles[s] for s in stages]))
            for stage in stages:
                per_stage[stage][name] = shipped
        return per_stage, fed

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
                    self._emit(name, ray.get(item) if isinstance(item, ray.ObjectRef) else item)
        except Exception:  # noqa: BLE001 - the stage's failure is reported by `_monitor`, which sees its cause
            self._stop_all()

    def _feed(self, name: str, port: Any, items: Any, handles: list[Any]) -> None:
        """Relay a lazily produced stream input to the stages reading it, item by item, in order."""
        try:
            for item in items:
                check_item(port, item, f"graph input '{name}'")
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
            self._finish()

    def _collect(self, reports: dict[str, dict[str, Any]], lost: dict[str, BaseException]) -> None:
        pending = dict(self._finishing)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            stage = pending.pop(ready[0])
            try:
                report = ray.get(ready[0])
            except (RayActorError, RayTaskError) as exc:  # the actor died, or its part failed to start
                lost[stage] = exc
                if isinstance(exc, RayActorError):
                    self.executor.mark_lost(stage, self.chosen[stage])
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


def _first_line(error: BaseException) -> str:
    """The informative part of Ray's multi-line actor-death message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "died" in line or "killed" in line or "exit" in line.lower()]
    return (useful or lines or [type(error).__name__])[0]
