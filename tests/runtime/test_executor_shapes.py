"""Graph shapes through the local executor: each a few lines of YAML and the outputs they must give."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from toy_nodes import ALL, Number
from toy_shapes import HEADER, SHAPE_INPUTS, SHAPES

from omnigraph.testing import graph_from_yaml, run_graph


@pytest.mark.parametrize("shape", SHAPES)
def test_shape_gives_expected_outputs(shape: str) -> None:
    text, expected = SHAPES[shape]
    graph = graph_from_yaml(textwrap.dedent(text), extra_kinds=ALL)
    result = run_graph(graph, SHAPE_INPUTS.get(shape))
    assert result.outputs == expected
    assert result.missing == {}


BASE = HEADER + """
nodes:
  src: {kind: t_count}
  x2: {kind: t_scale}
  total: {kind: t_sum}
edges: [src.items -> x2.items, x2.items -> total.items]
outputs: {total: total.total, scaled: x2.items}
"""


def _child(tmp_path: Path, body: str) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\n" + textwrap.dedent(body))
    return child


def test_inserted_node_sits_on_the_edge(tmp_path: Path) -> None:
    child = _child(tmp_path, """
        nodes:
          x5: {kind: t_scale, config: {factor: 5}}
        insert:
          - {node: x5, on: "x2.items -> total.items"}
        """)
    result = run_graph(child, extra_kinds=ALL)
    assert result.outputs["total"] == Number(60)  # (0+1+2+3) * 2 * 5
    assert result.outputs["scaled"] == [Number(v) for v in (0, 2, 4, 6)]  # other consumers of x2 unchanged


def test_replaced_node_keeps_its_edges(tmp_path: Path) -> None:
    child = _child(tmp_path, """
        replace:
          x2: {kind: t_scale, config: {factor: -1}}
        """)
    result = run_graph(child, extra_kinds=ALL)
    assert result.outputs["total"] == Number(-6)


def test_removed_node_takes_its_edges_and_outputs(tmp_path: Path) -> None:
    child = _child(tmp_path, """
        remove: [total]
        """)
    result = run_graph(child, extra_kinds=ALL)
    assert set(result.outputs) == {"scaled"}


def test_graph_input_given_as_string_is_parsed_by_its_payload_type() -> None:
    graph = graph_from_yaml(BASE, extra_kinds=ALL)
    assert run_graph(graph, {"n": "3"}).outputs["total"] == Number(6)


def test_stream_graph_input_accepts_an_iterable() -> None:
    graph = graph_from_yaml("""
        inputs: {items: x2.items}
        nodes: {x2: {kind: t_scale}}
        outputs: {items: x2.items}
        """, extra_kinds=ALL)
    result = run_graph(graph, {"items": (Number(i) for i in range(3))})
    assert result.outputs["items"] == [Number(0), Number(2), Number(4)]


def test_same_graph_same_outputs_on_every_run() -> None:
    graph = graph_from_yaml(SHAPES["fan-in"][0], extra_kinds=ALL)
    first = run_graph(graph).outputs
    assert all(run_graph(graph).outputs == first for _ in range(5))
