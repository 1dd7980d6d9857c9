"""What every executor's run shares with its caller: graph outputs gathered as they arrive, an event stream, the
error (or cancellation) the run ended with, and waiting for the result (with the same timeout on every executor)."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import RunCancelled
from .graph import Graph
from .run_result import RunResult, assemble_result
from .stats import RunStats

DONE = object()  # put on the event queue when the run has ended


@dataclass(frozen=True)
class OutputEvent:
    """One item (or the whole value) of a graph output, as soon as it is produced."""

    name: str
    value: Any


class RunOutputs:
    """Mixed into run classes; `_init_outputs` sets up the state, the run calls `_finish` once at its end (after
    setting `error`), and gives `_skip_reasons` and `cancel`."""

    id: str
    graph: Graph
    stats: RunStats

    def _init_outputs(self, graph: Graph) -> None:
        self.error: BaseException | None = None
        self._cancelled_by_caller = False
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._outputs: dict[str, Any] = {}
        self._stream_outputs = frozenset(n for n, o in graph.outputs.items() if o.port.is_stream)

    def result(self, timeout: float | None = None) -> RunResult:
        """Wait for the run to end: its outputs, NodeFailed naming the node that failed, or RunCancelled.
        TimeoutError if it is still going after `timeout` seconds (the run goes on; `cancel` stops it)."""
        try:
            if not self._ended.wait(timeout):
                raise TimeoutError(f"run {self.id} still going after {timeout} s")
        except KeyboardInterrupt:
            self.cancel()
            raise
        self._raise_if_failed()
        return assemble_result(self.graph, dict(self._outputs), self._skip_reasons(), self.stats)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (True), or `timeout` passed (False)."""
        return self._ended.wait(timeout)

    def events(self) -> Iterator[OutputEvent]:
        """Graph output items as they are produced; raises NodeFailed if a node (or a remote stage) fails."""
        while True:
            event = self._events.get()
            if event is DONE:
                break
            yield event
        self._raise_if_failed()

    def _finish(self) -> None:
        self._ended.set()
        self._events.put(DONE)

    def _skip_reasons(self) -> dict[str, str]:
        """Node -> why it was skipped (once the run ended)."""
        raise NotImplementedError

    def _emit(self, name: str, item: Any) -> None:
        with self._lock:
            if name in self._stream_outputs:
                self._outputs.setdefault(name, []).append(item)
            else:
                self._outputs[name] = item
            self.stats.first_output.setdefault(name, self.stats.now())
        self._events.put(OutputEvent(name, item))

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error from getattr(self.error, "error", None)
        if self._cancelled_by_caller:
            raise RunCancelled(f"run {self.id} was cancelled")
