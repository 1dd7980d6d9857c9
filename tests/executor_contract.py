"""The executor contract, checked the same way on every executor (see runtime/executor.py)."""
from __future__ import annotations

import textwrap
import threading
from typing import Any, Callable, Iterator

import pytest
from toy_nodes import Number

from omnigraph.runtime.errors import NodeFailed, RunCancelled, UserError
from omnigraph.runtime.executor import Executor, RunHandle

# x2 doubles a stream input; total sums the doubled stream. Two placement groups: two Ray stages.
GRAPH = textwrap.dedent("""
    inputs: {items: x2.items}
    nodes:
      x2: {kind: t_scale, placement: {group: a}}
      total: {kind: t_sum, placement: {group: b}}
    edges: [x2.items -> total.items]
    outputs: {doubled: x2.items, total: total.total}
    """)


def gated(gate: threading.Event) -> Iterator[Any]:
    """A lazy stream input: one item, then a second once the test sets `gate`."""
    yield Number(1)
    assert gate.wait(60), "the test never opened the gate"
    yield Number(2)


def check_contract(executor: Any, loaded: Callable[[], bool]) -> None:
    """`executor` is fresh (not loaded) and runs GRAPH; `loaded()` tells whether it loaded anything."""
    assert isinstance(executor, Executor)
    with pytest.raises(UserError, match="has no input 'itemz'; did you mean 'items'"):
        executor.start({"itemz": [Number(1)]})
    assert not loaded(), "bad inputs must fail before anything loads"

    gate = threading.Event()
    run = executor.start({"items": gated(gate)})
    assert isinstance(run, RunHandle)
    with pytest.raises(TimeoutError, match=f"run {run.id} still going after 0 s"):
        run.result(timeout=0)
    assert not run.wait(0)
    gate.set()
    result = run.result(timeout=60)
    assert result.outputs == {"doubled": [Number(2), Number(4)], "total": Number(6)}
    assert run.wait(0)
    run.cancel()  # once ended, a run stays as it ended
    assert run.result(timeout=0).outputs["total"] == Number(6)

    with pytest.raises(NodeFailed, match="graph input 'items' carries Number, got str") as failed:
        executor.run({"items": iter([Number(1), "two"])})
    assert failed.value.node == "input:items"

    gate = threading.Event()
    run = executor.start({"items": gated(gate)})
    run.cancel()
    gate.set()
    with pytest.raises(RunCancelled):
        run.result(timeout=60)
    assert executor.run({"items": [Number(3)]}).outputs["total"] == Number(6)  # usable after a cancel
