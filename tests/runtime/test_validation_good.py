"""Graphs that must validate: the shipped ones, `extends:` edits, and `--set` style config overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from omnigraph.runtime.errors import GraphValidationError, Location
from omnigraph.runtime.spec import Endpoint
from omnigraph.runtime.validate import load_graph

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "graphs").glob("*.yaml"))

BASE = """\
inputs:
  text: {to: [split.text], default: hello world}
nodes:
  split: {kind: split_text}
  morse: {kind: morse_synth, config: {wpm: 24}}
  join: {kind: join_text}
edges:
  - split.pieces -> morse.text
  - split.pieces -> join.pieces
outputs:
  text: join.text
  audio: morse.audio
"""
UPPER = 'upper: {kind: regex_replace, config: {pattern: "[a-z]+", replacement: "X"}}'


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def edges(graph) -> set[str]:
    return {str(e) for e in graph.edges}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_graph_validates(path: Path):
    graph = load_graph(path)
    assert graph.nodes and graph.outputs
    assert load_graph(path.stem).nodes.keys() == graph.nodes.keys()  # by shipped name too


def test_demo_graph_shape():
    graph = load_graph("demo")
    assert edges(graph) == {"split.pieces -> morse.text", "split.pieces -> join.pieces"}
    assert graph.inputs["text"].targets == (Endpoint("split", "text"),)
    assert {n: o.src for n, o in graph.outputs.items()} == {"text": Endpoint("join", "text"),
                                                            "audio": Endpoint("morse", "audio")}


def test_replace_keeps_edges(base: Path):
    child = write(base.parent, "child.yaml", "extends: base.yaml\nreplace:\n"
                  "  morse: {kind: morse_synth, config: {wpm: 40, tone_hz: 800}}\n")
    graph = load_graph(child)
    assert graph.nodes["morse"].config.wpm == 40 and graph.nodes["morse"].config.tone_hz == 800
    assert edges(graph) == edges(load_graph(base))
    assert graph.name == "child" and graph.file == str(child.resolve())


def test_remove_drops_edges_and_outputs(base: Path):
    graph = load_graph(write(base.parent, "child.yaml", "extends: base.yaml\nremove: [join]\n"))
    assert set(graph.nodes) == {"split", "morse"}
    assert edges(graph) == {"split.pieces -> morse.text"}
    assert set(graph.outputs) == {"audio"}


def test_insert_chooses_ports(base: Path):
    child = write(base.parent, "child.yaml", f"extends: base.yaml\nnodes:\n  {UPPER}\n"
                  "insert:\n  - {node: upper, on: split.pieces -> morse.text}\n")
    graph = load_graph(child)
    assert edges(graph) == {"split.pieces -> upper.text", "upper.text -> morse.text", "split.pieces -> join.pieces"}


def test_insert_with_explicit_ports(base: Path):
    child = write(base.parent, "child.yaml", f"extends: base.yaml\nnodes:\n  {UPPER}\ninsert:\n"
                  "  - node: upper\n    on: split.pieces -> join.pieces\n    input: text\n    output: text\n")
    graph = load_graph(child)
    assert edges(graph) == {"split.pieces -> morse.text", "split.pieces -> upper.text", "upper.text -> join.pieces"}


def test_inputs_and_outputs_override(base: Path):
    child = write(base.parent, "child.yaml", "extends: base.yaml\nname: renamed\ndescription: other\n"
                  "inputs:\n  text: {to: [split.text], default: sos, required: true}\n"
                  "outputs:\n  audio: morse.audio\n  pieces: split.pieces\n")
    graph = load_graph(child)
    assert graph.name == "renamed" and graph.description == "other"
    assert graph.inputs["text"].default == "sos" and graph.inputs["text"].required
    assert set(graph.outputs) == {"text", "audio", "pieces"}
    assert graph.outputs["pieces"].src == Endpoint("split", "pieces")


def test_relative_path_extends(base: Path):
    child = write(base.parent, "sub/deeper/child.yaml", "extends: ../../base.yaml\n")
    assert edges(load_graph(child)) == edges(load_graph(base))


def test_chain_of_three_files(base: Path):
    write(base.parent, "middle/mid.yaml", f"extends: ../base.yaml\nnodes:\n  {UPPER}\n"
          "insert:\n  - {node: upper, on: split.pieces -> join.pieces}\n")
    top = write(base.parent, "top.yaml", "extends: middle/mid.yaml\nremove: [morse]\n"
                "replace:\n  join: {kind: join_text, config: {separator: '|'}}\n")
    graph = load_graph(top)
    assert set(graph.nodes) == {"split", "upper", "join"}
    assert edges(graph) == {"split.pieces -> upper.text", "upper.text -> join.pieces"}
    assert graph.nodes["join"].config.separator == "|"
    assert set(graph.outputs) == {"text"}


def test_extends_shipped_name(tmp_path: Path):
    graph = load_graph(write(tmp_path, "child.yaml", "extends: demo\nremove: [morse]\n"))
    assert edges(graph) == {"split.pieces -> join.pieces"}


def test_override_applies():
    graph = load_graph(ROOT / "graphs" / "demo.yaml", overrides={("morse", "wpm"): 12})
    assert graph.nodes["morse"].config.wpm == 12


def test_bad_override_is_located_at_the_flag():
    with pytest.raises(GraphValidationError) as info:
        load_graph(ROOT / "graphs" / "demo.yaml", overrides={("morse", "wpm"): -1})
    [issue] = info.value.issues
    assert (issue.code, issue.where, issue.node) == ("bad-config", Location("--set morse.wpm"), "morse")
    assert "greater than 0" in issue.message


@pytest.mark.parametrize("override, code, hint", [
    (("mors", "wpm"), "unknown-node", "did you mean 'morse'?"),
    (("morse", "wmp"), "unknown-field", "did you mean 'wpm'?"),
])
def test_override_of_unknown_names(override, code, hint):
    with pytest.raises(GraphValidationError) as info:
        load_graph(ROOT / "graphs" / "demo.yaml", overrides={override: 10})
    [issue] = info.value.issues
    assert issue.code == code and issue.hint == hint
    assert issue.where.file.startswith("--set")
