"""The local executor keeps the executor contract (tests/distributed checks the Ray one the same way), and its
shutdown / context manager stop runs and release the loaded nodes."""
from __future__ import annotations

import pytest
from executor_contract import GRAPH, check_contract
from toy_nodes import ALL, Number

from omnigraph.runtime.errors import RunCancelled
from omnigraph.runtime.executor import Executor
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.testing import graph_from_yaml


def test_local_executor_keeps_the_contract() -> None:
    with LocalExecutor(graph_from_yaml(GRAPH, extra_kinds=ALL)) as executor:
        check_contract(executor, loaded=lambda: any(node._loaded for node in executor.nodes.values()))


def test_ray_executor_class_keeps_the_contract() -> None:
    pytest.importorskip("ray")
    from omnigraph.runtime.executor_ray import RayExecutor

    assert isinstance(RayExecutor(graph_from_yaml(GRAPH, extra_kinds=ALL)), Executor)  # connects to nothing


ENDLESS = """
inputs: {n: src.n}
nodes:
  src: {kind: t_endless}
  total: {kind: t_sum}
edges: [src.items -> total.items]
outputs: {total: total.total}
"""


def test_context_manager_cancels_runs_still_going_and_releases_the_nodes() -> None:
    with LocalExecutor(graph_from_yaml(ENDLESS, extra_kinds=ALL)) as executor:
        run = executor.start({"n": Number(0)})  # streams until cancelled
        loaded = dict(executor.nodes)
        assert all(node._loaded for node in loaded.values())
    assert run.wait(0)  # shutdown waited for it
    with pytest.raises(RunCancelled):
        run.result(timeout=0)
    assert all(not node._loaded for node in executor.nodes.values())
    assert not set(map(id, executor.nodes.values())) & set(map(id, loaded.values()))  # the loaded ones are dropped
    assert executor.start({"n": Number(0)}).wait(0) is False  # loads afresh and runs again
    executor.shutdown()


def test_shutdown_without_runs_is_harmless_and_repeatable() -> None:
    executor = LocalExecutor(graph_from_yaml(GRAPH, extra_kinds=ALL))
    executor.shutdown()
    executor.shutdown()
    assert executor.run({"items": [Number(1)]}).outputs["total"] == Number(2)
