"""Pictures of graphs (`omnigraph show`): text, Mermaid, dot, SVG and PNG."""
from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from toy_nodes import ALL

from omnigraph.runtime import render
from omnigraph.runtime.graph import Graph
from omnigraph.runtime.validate import load_graph
from omnigraph.testing import graph_from_yaml

# Stream edges (split -> join, split2 -> morse), one whole-value edge (join -> split2), placement on two nodes.
MIXED = """
name: mixed
description: words, joined, split again and keyed.
inputs:
  text: {to: [split.text], default: hi there}
nodes:
  split: {kind: split_text, placement: {group: speech, num_gpus: 1}}
  join: {kind: join_text}
  split2: {kind: split_text, config: {unit: chars}}
  morse: {kind: morse_synth, placement: {num_cpus: 4, memory: 1000, resources: {tpu: 2}, replicas: 3, device: cpu}}
edges:
  - split.pieces -> join.pieces
  - join.text -> split2.text
  - split2.pieces -> morse.text
outputs:
  audio: morse.audio
  text: join.text
"""

# A feedback edge under `loops:` (the loop starts from the graph input `n`).
LOOPED = """
inputs: {n: {to: [a.start], default: 1}}
nodes:
  a: {kind: t_ask}
  b: {kind: t_scale}
edges: [a.questions -> b.items]
loops: [b.items -> a.answers]
outputs: {out: a.last}
"""

KINDS = {"split": "split_text", "join": "join_text", "split2": "split_text", "morse": "morse_synth"}


@pytest.fixture(scope="module")
def mixed() -> Graph:
    return graph_from_yaml(MIXED)


@pytest.fixture(scope="module")
def looped() -> Graph:
    return graph_from_yaml(LOOPED, extra_kinds=ALL)


def edge_lines(text: str, src: str, dst: str) -> list[str]:
    return [line for line in text.splitlines() if src in line and dst in line]


# -- text -----------------------------------------------------------------------------------------------
def test_text_lists_nodes_with_kinds_in_dependency_order(mixed: Graph) -> None:
    text = render.to_text(mixed)
    headers = re.findall(r"^  (\w+) \((\w+)\)", text, flags=re.M)
    assert headers == [("split", "split_text"), ("join", "join_text"), ("split2", "split_text"),
                       ("morse", "morse_synth")]
    assert text.startswith("graph mixed (<graph>)\n  words, joined, split again and keyed.\n")


def test_text_shows_ports_with_types_and_modes(mixed: Graph) -> None:
    text = render.to_text(mixed)
    assert "    in  pieces: Text*" in text  # join's stream input
    assert "    out text: Text\n" in text  # join's whole output
    assert "    out audio: AudioChunk*" in text


def test_text_draws_streams_and_whole_values_differently(mixed: Graph) -> None:
    text = render.to_text(mixed)
    assert "  split.pieces ==> join.pieces   [Text]" in text
    assert "  join.text --> split2.text   [Text]" in text
    assert "  split2.pieces ==> morse.text   [Text]" in text


def test_text_lists_inputs_and_outputs(mixed: Graph) -> None:
    text = render.to_text(mixed)
    assert "  text: Text -> split.text [default 'hi there']" in text
    assert "  audio: morse.audio [AudioChunk*]" in text
    assert "  text: join.text [Text]" in text


def test_text_shows_placement_only_when_set(mixed: Graph) -> None:
    text = render.to_text(mixed)
    assert "  split (split_text) [group=speech, gpus=1]\n" in text
    assert "  join (join_text)\n" in text
    assert "  morse (morse_synth) [cpus=4, memory=1000, tpu=2, replicas=3, device=cpu]\n" in text


def test_text_marks_loop_edges(looped: Graph) -> None:
    text = render.to_text(looped)
    assert "  b.items ~~> a.answers   [Number]" in text
    assert "  a.questions ==> b.items   [Number]" in text


# -- mermaid --------------------------------------------------------------------------------------------
def test_mermaid_has_every_node_and_kind(mixed: Graph) -> None:
    text = render.to_mermaid(mixed)
    assert text.startswith("flowchart LR\n")
    for name, kind in KINDS.items():
        assert f'n_{name}["<b>{name}</b><br/>{kind}' in text


def test_mermaid_streams_are_thick_whole_values_thin(mixed: Graph) -> None:
    text = render.to_mermaid(mixed)
    assert edge_lines(text, "n_split ", "n_join")[0].startswith("  n_split ==>|")
    assert edge_lines(text, "n_join ", "n_split2")[0].startswith("  n_join -->|")
    assert "n_morse ==>|\"audio\"| out_n_audio" in text
    assert "n_join -->|\"text\"| out_n_text" in text


def test_mermaid_shows_placement_and_loops(mixed: Graph, looped: Graph) -> None:
    assert "<i>group=speech, gpus=1</i>" in render.to_mermaid(mixed)
    assert "n_b -.->|" in render.to_mermaid(looped)


def test_mermaid_ids_keep_dash_and_underscore_names_apart() -> None:
    graph = graph_from_yaml("""
        nodes:
          a-b: {kind: split_text}
          a_b: {kind: join_text}
          a_hb: {kind: split_text}
        edges: [a-b.pieces -> a_b.pieces]
        inputs: {t: [a-b.text, a_hb.text]}
        """)
    text = render.to_mermaid(graph)
    ids = re.findall(r"^  (n_\S+)\[", text, flags=re.M)
    assert len(ids) == len(set(ids)) == 3


def test_mermaid_escapes_quotes_in_labels() -> None:
    graph = graph_from_yaml("""
        nodes: {s: {kind: split_text, placement: {group: 'my "group"'}}}
        inputs: {t: s.text}
        """)
    text = render.to_mermaid(graph)
    assert "group=my #quot;group#quot;" in text
    label = re.search(r'n_s\["(.*)"\]$', text, flags=re.M).group(1)
    assert '"' not in label


# -- dot ------------------------------------------------------------------------------------------------
def assert_dot_well_formed(text: str) -> None:
    """Without Graphviz: braces balance, every quoted string closes, statements end with ';'."""
    unescaped = re.sub(r'\\.', "", text)
    assert unescaped.count('"') % 2 == 0
    outside = re.sub(r'"[^"]*"', '""', unescaped)
    assert outside.count("{") == outside.count("}") == 1
    assert outside.count("[") == outside.count("]")
    body = outside.strip().splitlines()[1:-1]
    assert all(line.rstrip().endswith(";") for line in body)
    if shutil.which("dot"):  # the real parser, when it is installed
        subprocess.run(["dot", "-Tsvg"], input=text, text=True, check=True, capture_output=True)


def test_dot_is_well_formed(mixed: Graph, looped: Graph) -> None:
    for graph in (mixed, looped, load_graph("demo")):
        assert_dot_well_formed(render.to_dot(graph))


def test_dot_has_every_node_and_kind(mixed: Graph) -> None:
    text = render.to_dot(mixed)
    assert text.startswith('digraph "mixed" {\n')
    for name, kind in KINDS.items():
        assert f'"{name}" [label="{name}\\n({kind})' in text


def test_dot_streams_bold_whole_values_solid_loops_dotted(mixed: Graph, looped: Graph) -> None:
    text = render.to_dot(mixed)
    assert "style=bold" in edge_lines(text, '"split" -> ', '"join"')[0]
    assert "style=solid" in edge_lines(text, '"join" -> ', '"split2"')[0]
    assert "style=bold" in edge_lines(text, '"split2" -> ', '"morse"')[0]
    assert "style=dotted" in edge_lines(render.to_dot(looped), '"b" -> ', '"a"')[0]


def test_dot_shows_placement(mixed: Graph) -> None:
    assert '"split" [label="split\\n(split_text)\\n[group=speech, gpus=1]"];' in render.to_dot(mixed)


def test_dot_escapes_quotes_in_labels() -> None:
    graph = graph_from_yaml("""
        name: my-demo
        nodes: {s: {kind: split_text, placement: {group: 'a\\b"c'}}}
        inputs: {t: s.text}
        """)
    text = render.to_dot(graph)
    assert text.startswith('digraph "my-demo" {')
    assert_dot_well_formed(text)


# -- pictures -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mixed", "looped"])
def test_svg_is_xml(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    graph = request.getfixturevalue(name)
    path = tmp_path / "g.svg"
    render.draw(graph, path, "svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert "split_text" in path.read_text() or "t_ask" in path.read_text()


def test_png_has_the_png_magic(mixed: Graph, tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    render.draw(mixed, path, "png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def test_draw_a_single_node_without_edges(tmp_path: Path) -> None:
    graph = graph_from_yaml("nodes: {s: {kind: split_text}}\ninputs: {t: s.text}\n")
    render.draw(graph, tmp_path / "one.svg", "svg")
    assert ET.parse(tmp_path / "one.svg").getroot().tag.endswith("svg")
