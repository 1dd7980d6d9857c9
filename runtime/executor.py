"""The contract every executor keeps (local threads, Ray actors): load once, start many runs, shut down."""
from __future__ import annotations

import threading
from typing import Any, Iterator, Protocol, runtime_checkable

from .graph import Graph
from .run_outputs import OutputEvent
from .run_result import RunResult
from .stats import RunStats


@runtime_checkable
class RunHandle(Protocol):
    """One started run. Bad inputs fail `start` (UserError), never the run; the three ways to end agree:
    `result` returns the outputs or raises NodeFailed / RunCancelled, `events` yields outputs as they come and
    raises the same at its end."""

    id: str
    stats: RunStats

    def events(self) -> Iterator[OutputEvent]:
        """Graph output items as they are produced, until the run ends."""

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the end; TimeoutError after `timeout` seconds (the run goes on until `cancel`)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the run ended within `timeout` seconds."""

    def cancel(self) -> None:
        """Stop every node of the run; `result` then raises RunCancelled."""


@runtime_checkable
class Executor(Protocol):
    """Runs one validated graph; usable as a context manager that calls `shutdown` at its end."""

    name: str
    graph: Graph

    def load(self, stop: threading.Event | None = None) -> None:
        """Load every node's weights (idempotent; `start` loads too); RunCancelled once `stop` is set."""

    def start(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> RunHandle:
        """Check the inputs (UserError before anything loads), load, and begin a run."""

    def run(self, inputs: dict[str, Any] | None = None, *, seed: int = 0) -> RunResult:
        """`start(...).result()`."""

    def shutdown(self) -> None:
        """Cancel runs still going and release what the loaded nodes hold."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: Any) -> None: ...


SHUTDOWN_GRACE = 10.0  # seconds `shutdown` waits for cancelled runs to end


def cancel_runs(runs: list[RunHandle], grace: float = SHUTDOWN_GRACE) -> None:
    """Cancel every run, then wait (at most `grace` seconds each) for them to end: what `shutdown` does first."""
    for run in runs:
        run.cancel()
    for run in runs:
        run.wait(grace)
