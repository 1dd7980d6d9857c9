"""The local executor's promises: streaming latency, failure handling, concurrency, stats and traces."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from toy_nodes import ALL, Count, Number

from omnigraph.runtime.errors import NodeFailed, RunCancelled, UserError
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.testing import graph_from_yaml, run_graph

CHAIN = """
inputs: {n: {to: [src.n], default: 5}}
nodes:
  src: {kind: t_count, config: {gate: %s}}
  a: {kind: t_scale}
  b: {kind: t_scale}
edges: [src.items -> a.items, a.items -> b.items]
outputs: {items: b.items}
"""


def test_first_item_leaves_a_streaming_chain_before_the_source_finishes() -> None:
    # The source blocks after its first item until the test has seen that item at the graph output:
    # without streaming delivery this run could never finish.
    gate = Count.gates["chain"] = threading.Event()
    run = LocalExecutor(graph_from_yaml(CHAIN % "chain", extra_kinds=ALL)).start()
    events = run.events()
    first = next(events)
    assert first.value == Number(0)
    assert run.stats.nodes["src"].finished is None
    gate.set()
    assert [e.value for e in events] == [Number(v) for v in (4, 8, 12, 16)]
    stats = run.result().stats
    assert stats.first_output["items"] < stats.nodes["src"].finished


def test_failure_names_the_node_and_cancels_the_others() -> None:
    graph = graph_from_yaml("""
        inputs: {n: {to: [src.n], default: 1}}
        nodes:
          src: {kind: t_endless}
          bad: {kind: t_fail, config: {after: 3}}
          other: {kind: t_scale}
        edges: [src.items -> bad.items, src.items -> other.items]
        outputs: {items: other.items, bad: bad.items}
        """, extra_kinds=ALL)
    t0 = time.perf_counter()
    with pytest.raises(NodeFailed) as info:
        run_graph(graph)
    assert time.perf_counter() - t0 < 5  # the endless source was stopped
    assert info.value.node == "bad" and info.value.kind == "t_fail"
    assert isinstance(info.value.error, ValueError) and "boom at item 3" in str(info.value)


def test_events_raise_the_failure_too() -> None:
    graph = graph_from_yaml("""
        inputs: {n: {to: [src.n], default: 10}}
        nodes: {src: {kind: t_count}, bad: {kind: t_fail, config: {after: 2}}}
        edges: [src.items -> bad.items]
        outputs: {items: bad.items}
        """, extra_kinds=ALL)
    run = LocalExecutor(graph).start()
    seen = []
    with pytest.raises(NodeFailed):
        for event in run.events():
            seen.append(event.value)
    assert seen == [Number(0), Number(1)]


@pytest.mark.parametrize("how, message", [
    ("wrong-type", "carries Number, got int"),
    ("unknown-port", "unknown output port 'nope'"),
    ("twice", "whole-value port 'total' twice"),
])
def test_contract_violations_fail_with_a_clear_message(how: str, message: str) -> None:
    graph = graph_from_yaml(f"""
        inputs: {{n: {{to: [m.n], default: 1}}}}
        nodes: {{m: {{kind: t_misbehave, config: {{how: {how}}}}}}}
        outputs: {{items: m.items, total: m.total}}
        """, extra_kinds=ALL)
    with pytest.raises(NodeFailed, match=message):
        run_graph(graph)


def test_concurrent_runs_share_nodes_not_state() -> None:
    graph = graph_from_yaml("""
        inputs: {n: {to: [src.n], required: true}}
        nodes:
          src: {kind: t_count, config: {delay: 0.001}}
          x2: {kind: t_scale}
          total: {kind: t_sum}
        edges: [src.items -> x2.items, x2.items -> total.items]
        outputs: {total: total.total}
        """, extra_kinds=ALL)
    executor = LocalExecutor(graph)
    sizes = list(range(1, 17))
    with ThreadPoolExecutor(8) as pool:
        totals = list(pool.map(lambda n: executor.run({"n": Number(n)}).outputs["total"].value, sizes))
    assert totals == [n * (n - 1) for n in sizes]


def test_absent_input_skips_dependents_and_says_why() -> None:
    graph = graph_from_yaml("""
        inputs: {n: src.n}
        nodes:
          src: {kind: t_count}
          total: {kind: t_sum}
        edges: [src.items -> total.items]
        outputs: {total: total.total}
        """, extra_kinds=ALL)
    result = run_graph(graph)
    assert "total" not in result.outputs
    assert "graph input 'n' was not given" in result.missing["total"]
    assert result.stats.nodes["src"].skipped and result.stats.nodes["total"].skipped


def test_a_node_whose_every_input_comes_from_skipped_nodes_is_skipped_too() -> None:
    """Nothing reached it: skipped with the reason, not run with no inputs; one input arriving runs it."""
    graph = graph_from_yaml("""
        inputs: {x: first.a, y: second.a}
        nodes:
          first: {kind: t_add}
          second: {kind: t_add}
          either: {kind: t_either}
        edges: [first.total -> either.a, second.total -> either.b]
        outputs: {value: either.value}
        """, extra_kinds=ALL)
    result = run_graph(graph)
    assert "value" not in result.outputs and "nothing reached it ('first' was skipped" in result.stats.nodes[
        "either"].skipped
    assert run_graph(graph, {"y": Number(1)}).outputs["value"] == Number(101)


def test_required_graph_input_missing_is_a_user_error() -> None:
    graph = graph_from_yaml("""
        inputs: {n: {to: [src.n], required: true}}
        nodes: {src: {kind: t_count}}
        outputs: {items: src.items}
        """, extra_kinds=ALL)
    with pytest.raises(UserError, match="needs input 'n'"):
        run_graph(graph)
    with pytest.raises(UserError, match="no input 'm'"):
        run_graph(graph, {"m": 1})


def test_stats_and_trace(tmp_path) -> None:
    Count.gates["open"] = threading.Event()
    Count.gates["open"].set()
    result = run_graph(graph_from_yaml(CHAIN % "open", extra_kinds=ALL))
    stats = result.stats
    for name in ("src", "a", "b"):
        node = stats.nodes[name]
        assert node.wall is not None and node.wall >= 0
        assert node.first_output is not None
    assert stats.nodes["a"].items_in["items"] == 5 and stats.nodes["a"].items_out["items"] == 5
    trace = json.loads(stats.write_trace(tmp_path / "trace.json").read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["name"] for e in spans) == ["a", "b", "src"]
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)


def test_buffers_are_bounded() -> None:
    graph = graph_from_yaml("""
        inputs: {n: {to: [src.n], default: 1}}
        nodes: {src: {kind: t_endless}, x2: {kind: t_scale}}
        edges: [src.items -> x2.items]
        outputs: {items: x2.items}
        """, extra_kinds=ALL)
    run = LocalExecutor(graph, buffer_size=4).start()
    events = run.events()
    next(events)
    src, x2 = run.stats.nodes["src"], run.stats.nodes["x2"]
    ahead = []
    deadline = time.monotonic() + 60
    while len(ahead) < 200 and time.monotonic() < deadline:  # sample while both run, however loaded the machine
        produced = src.items_out["items"]
        ahead.append(produced - x2.items_in["items"])  # read after `produced`: never more than it was then
    run.cancel()
    with pytest.raises(RunCancelled):
        run.result()
    # the buffer, the item being put, and the item x2 has taken but not yet counted
    assert len(ahead) == 200 and max(ahead) <= 4 + 2


def test_node_seed_depends_on_run_seed_and_node_name() -> None:
    graph = graph_from_yaml("""
        inputs: {n: [a.n, b.n]}
        nodes: {a: {kind: t_seeded}, b: {kind: t_seeded}}
        outputs: {a: a.seed, b: b.seed}
        """, extra_kinds=ALL)
    one = run_graph(graph, {"n": 1}, seed=1).outputs
    assert one == run_graph(graph, {"n": 1}, seed=1).outputs
    assert one["a"] != one["b"]
    assert one != run_graph(graph, {"n": 1}, seed=2).outputs
