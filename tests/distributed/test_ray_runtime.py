"""The Ray executor's runtime behaviour on toy graphs: every node in its own actor, so every edge crosses actors."""
from __future__ import annotations

import os
import signal
import textwrap
import threading
import time

import pytest
from executor_contract import GRAPH as CONTRACT_GRAPH, check_contract
from toy_shapes import SHAPE_INPUTS, SHAPES
from toy_nodes import ALL, Number

from omnigraph.runtime.errors import NodeFailed, RunCancelled
from omnigraph.runtime.executor_ray import RayExecutor
from omnigraph.runtime.ray_run import StageLost
from omnigraph.testing import graph_from_yaml, run_graph


def own_stage_each(text: str):
    """The graph with each node in a placement group of its own (one actor per node)."""
    plain = graph_from_yaml(text, extra_kinds=ALL)
    return graph_from_yaml(text, extra_kinds=ALL, overrides={(n, "placement.group"): n for n in plain.nodes})


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_across_actors(ray_session, shape) -> None:
    text, expected = SHAPES[shape]
    graph = own_stage_each(textwrap.dedent(text))
    with RayExecutor(graph) as executor:
        assert len(executor.stages) == len(graph.nodes)
        result = executor.run(SHAPE_INPUTS.get(shape))
    assert result.outputs == expected
    assert result.missing == {}


PIPE = textwrap.dedent("""
    inputs: {n: {to: [src.n], default: 4}}
    nodes:
      src: {kind: t_count, config: {delay: 0.0}, placement: {group: a}}
      x2: {kind: t_scale, placement: {group: b}}
      total: {kind: t_sum, placement: {group: c}}
    edges: [src.items -> x2.items, x2.items -> total.items]
    outputs: {doubled: x2.items, total: total.total}
    """)


@pytest.fixture(scope="module")
def pipe(ray_session):
    """src (stage a) -> x2 (stage b) -> total (stage c), with a slow source so runs can be cut mid-way."""
    text = PIPE.replace("delay: 0.0", "delay: 0.02")
    with RayExecutor(graph_from_yaml(text, extra_kinds=ALL)) as executor:
        executor.load()
        yield executor


def test_stream_reaches_the_caller_while_running(pipe) -> None:
    run = pipe.start({"n": Number(50)})
    first = None
    for event in run.events():
        if event.name == "doubled" and first is None:
            first = time.perf_counter()
    done = time.perf_counter()
    assert done - first > 0.5  # the first item came long before the last (50 items, 20 ms apart)
    result = run.result()
    assert result.outputs["total"] == Number(2 * sum(range(50)))
    assert result.stats.first_output["doubled"] < result.stats.wall - 0.5


def test_stats_name_the_actor_and_ray_node_of_each_stage(pipe, ray_session) -> None:
    result = pipe.run({"n": Number(3)})
    for name, stage in (("src", "a"), ("x2", "b"), ("total", "c")):
        where = ray_session.get(pipe.actors[stage][0].where.remote())
        stats = result.stats.nodes[name]
        assert (stats.actor, stats.ray_node) == (where["actor_id"], where["node_id"])
        assert stats.wall is not None and stats.started >= 0
    trace = result.stats.chrome_trace()["traceEvents"]
    processes = [e for e in trace if e["name"] == "process_name"]
    assert len(processes) == 3 and all("actor" in p["args"]["name"] for p in processes)


def test_lazy_stream_input_is_relayed_in_order(ray_session) -> None:
    with RayExecutor(graph_from_yaml(CONTRACT_GRAPH, extra_kinds=ALL)) as executor:  # x2 (stage a) -> total (b)
        result = executor.run({"items": (Number(i) for i in range(20))})
        listed = executor.run({"items": [Number(i) for i in range(3)]})
    assert result.outputs["doubled"] == [Number(2 * i) for i in range(20)]
    assert result.outputs["total"] == Number(380) and listed.outputs["total"] == Number(6)


def test_node_exception_reports_its_remote_traceback(ray_session) -> None:
    text = PIPE.replace("t_scale", "t_fail").replace("x2: {kind: t_fail,", "x2: {kind: t_fail, config: {after: 2},")
    with RayExecutor(graph_from_yaml(text, extra_kinds=ALL)) as executor:
        with pytest.raises(NodeFailed) as failed:
            executor.run({"n": Number(10)})
        assert executor.run({"n": Number(2)}).outputs["total"] == Number(1)  # the stages stay usable
    assert failed.value.node == "x2" and "boom at item 2" in str(failed.value)
    assert isinstance(failed.value.error, ValueError)
    assert "toy_nodes.py" in failed.value.remote_traceback and "raise ValueError" in failed.value.remote_traceback


def test_cancel_stops_every_stage_and_the_next_run_works(pipe) -> None:
    run = pipe.start({"n": Number(10_000)})
    events = run.events()
    next(events)
    run.cancel()
    with pytest.raises(RunCancelled):
        run.result(timeout=30)
    assert pipe.run({"n": Number(4)}).outputs["total"] == Number(12)


def test_killed_actor_fails_the_run_clearly_and_the_next_run_succeeds(pipe, ray_session) -> None:
    victim = ray_session.get(pipe.actors["b"][0].where.remote())
    run = pipe.start({"n": Number(10_000)})
    events = run.events()
    next(events)  # the run is under way
    os.kill(victim["pid"], signal.SIGKILL)
    with pytest.raises(StageLost) as lost:
        run.result(timeout=60)
    message = str(lost.value)
    assert "'x2'" in message and "stage 'b'" in message and "died" in message and str(victim["pid"]) in message
    result = pipe.run({"n": Number(5)})  # Ray restarted the actor; it reloads its node
    assert result.outputs["total"] == Number(20) and result.outputs["doubled"] == [Number(2 * i) for i in range(5)]
    assert ray_session.get(pipe.actors["b"][0].where.remote())["pid"] != victim["pid"]
    for stage in ("a", "c"):  # the other stages kept their processes
        assert pipe.placed[stage][0]["pid"] == ray_session.get(pipe.actors[stage][0].where.remote())["pid"]


def test_a_run_waits_for_an_actor_that_ray_is_still_restarting(ray_session, tmp_path) -> None:
    """The run after a lost actor waits (bounded) for its restart instead of failing on a restarting actor."""
    hold = tmp_path / "hold-restart"
    text = PIPE.replace("delay: 0.0", "delay: 0.02").replace("kind: t_scale,", f"kind: t_held_scale, "
                                                              f"config: {{hold: '{hold}'}},")
    with RayExecutor(graph_from_yaml(text, extra_kinds=ALL)) as executor:
        executor.load()
        victim = ray_session.get(executor.actors["b"][0].where.remote())
        hold.touch()  # from now on, constructing x2 (so Ray's restart of its actor) waits for the file to go
        run = executor.start({"n": Number(10_000)})
        next(run.events())
        os.kill(victim["pid"], signal.SIGKILL)
        with pytest.raises(StageLost):
            run.result(timeout=60)
        outcome: dict[str, object] = {}
        later = threading.Thread(target=lambda: outcome.update(result=executor.run({"n": Number(5)})))
        later.start()  # starts while the actor is still restarting (held), so it has to wait for it
        hold.unlink()
        later.join(timeout=120)
    assert outcome["result"].outputs["total"] == Number(20)


def test_runs_beyond_what_replicas_serve_wait_their_turn(ray_session) -> None:
    """An actor has threads for `runs_per_replica` runs; more concurrent runs queue in `start`, none is lost."""
    with RayExecutor(graph_from_yaml(PIPE.replace("delay: 0.0", "delay: 0.01"), extra_kinds=ALL),
                     runs_per_replica=2) as executor:
        runs = [executor.start({"n": Number(n)}) for n in range(1, 9)]
        totals = [run.result(timeout=60).outputs["total"] for run in runs]
    assert totals == [Number(2 * sum(range(n))) for n in range(1, 9)]


def test_a_skip_reads_the_same_across_actors(ray_session) -> None:
    """A node skipped for want of an input, and the nodes after it in other actors: same reasons as locally."""
    text = textwrap.dedent("""
        inputs: {a: first.a, n: src.n}
        nodes:
          first: {kind: t_add, placement: {group: one}}
          second: {kind: t_add, placement: {group: two}}
          third: {kind: t_scale, placement: {group: three}}
          src: {kind: t_count, placement: {group: one}}
        edges: [first.total -> second.a, src.items -> third.items]
        outputs: {total: second.total, items: third.items}
        """)
    graph = graph_from_yaml(text, extra_kinds=ALL)
    local = run_graph(graph, {"n": Number(2)})
    with RayExecutor(graph) as executor:
        remote = executor.run({"n": Number(2)})
    assert remote.missing == local.missing and "'first' was skipped" in remote.missing["total"]
    assert remote.outputs == local.outputs == {"items": [Number(0), Number(2)]}
    assert remote.stats.nodes["second"].skipped == local.stats.nodes["second"].skipped


def test_ray_executor_keeps_the_executor_contract(ray_session) -> None:
    with RayExecutor(graph_from_yaml(CONTRACT_GRAPH, extra_kinds=ALL)) as executor:
        check_contract(executor, loaded=lambda: bool(executor.actors))
