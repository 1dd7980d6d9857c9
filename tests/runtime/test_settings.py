"""Run-wide settings (--greedy, --max-new-tokens): one field set on every node that declares it."""
from __future__ import annotations

import pytest
from toy_nodes import ALL, Number

from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.overrides import ALL_NODES, Setting, parse_overrides
from omnigraph.testing import graph_from_yaml, run_graph

GRAPH = """
inputs: {n: {to: [src.n], default: 3}}
nodes:
  src: {kind: t_count}
  a: {kind: t_scale, config: {factor: 2}}
  b: {kind: t_scale}
edges: [src.items -> a.items, a.items -> b.items]
outputs: {items: b.items}
"""


def test_setting_reaches_every_node_with_the_field_and_yields_to_explicit_overrides() -> None:
    graph = graph_from_yaml(GRAPH, extra_kinds=ALL, overrides={(ALL_NODES, "factor"): 3})
    assert graph.nodes["a"].config.factor == 3 and graph.nodes["b"].config.factor == 3
    assert run_graph(graph).outputs["items"] == [Number(0), Number(9), Number(18)]
    graph = graph_from_yaml(GRAPH, extra_kinds=ALL, overrides={(ALL_NODES, "factor"): 3, ("b", "factor"): 1})
    assert graph.nodes["b"].config.factor == 1


def test_setting_no_node_declares_is_an_error_named_after_the_flag() -> None:
    with pytest.raises(GraphValidationError) as info:
        graph_from_yaml(GRAPH, extra_kinds=ALL, overrides={(ALL_NODES, "max_new_tokens"): 4})
    issue = info.value.issues[0]
    assert issue.code == "unknown-field" and issue.where.file == "--max-new-tokens"


def test_bad_setting_value_is_located_at_the_flag() -> None:
    with pytest.raises(GraphValidationError) as info:
        graph_from_yaml(GRAPH, extra_kinds=ALL, overrides={(ALL_NODES, "factor"): "many"})
    assert {i.where.file for i in info.value.issues} == {"--set a.factor", "--set b.factor"}


def test_placement_settings_edit_placements_not_configs() -> None:
    from omnigraph.runtime.placement import plan_stages

    graph = graph_from_yaml(GRAPH, extra_kinds=ALL, overrides={
        (ALL_NODES, "placement.num_gpus"): 0.5, ("a", "placement.group"): "pair", ("b", "placement.group"): "pair",
        ("b", "placement.resources"): {"accel": 1}})
    assert {n.placement.num_gpus for n in graph.nodes.values()} == {0.5}
    assert graph.nodes["a"].config.factor == 2  # configs untouched
    stages = plan_stages(graph)
    assert {name: s.nodes for name, s in stages.items()} == {"src": ["src"], "pair": ["a", "b"]}
    assert stages["pair"].demand() == {"CPU": 1, "GPU": 0.5, "accel": 1}


def test_bad_placement_setting_is_located_at_the_flag() -> None:
    with pytest.raises(GraphValidationError) as info:
        graph_from_yaml(GRAPH, extra_kinds=ALL, overrides={("a", "placement.replicas"): 0,
                                                           ("a", "placement.gpus"): 1, ("c", "placement.group"): "x"})
    issues = {(i.code, i.node) for i in info.value.issues}
    assert issues == {("bad-placement", "a"), ("unknown-node", "c")}
    assert all(i.where.file == "--set" for i in info.value.issues)
    assert any("gpus" in i.message and "num_gpus" in (i.hint or "") for i in info.value.issues)


@pytest.mark.parametrize("typed, key, value, flag", [
    (["*.bogus=1"], None, None, "--set *.bogus"),
    (["*.factor=many"], None, None, "--set *.factor"),
    (["*.placement.replicas=0"], None, None, "--set *.placement.replicas"),
    ([], (ALL_NODES, "factor"), Setting(0.5, "--factor"), "--factor"),
])
def test_problems_name_the_flag_the_user_typed(typed: list[str], key: tuple | None, value: Setting | None,
                                                flag: str) -> None:
    overrides = parse_overrides(typed) | ({key: value} if key else {})
    with pytest.raises(GraphValidationError) as info:
        graph_from_yaml(GRAPH, extra_kinds=ALL, overrides=overrides)
    assert {i.where.file for i in info.value.issues} == {flag}
    assert all("--bogus" not in i.message and "--set a." not in i.message for i in info.value.issues)
