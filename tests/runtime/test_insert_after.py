"""`insert: after:` puts a node behind an output port: every edge and graph output reading it moves."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.payloads import Text
from omnigraph.testing import run_graph
from omnigraph.runtime.validate import load_graph

BASE = """
inputs: {text: {to: split.text, default: "a secret plan"}}
nodes:
  split: {kind: split_text}
  join: {kind: join_text}
edges: [split.pieces -> join.pieces]
outputs: {text: join.text, pieces: split.pieces}
"""


def child(tmp_path: Path, body: str) -> Path:
    (tmp_path / "base.yaml").write_text(BASE)
    path = tmp_path / "child.yaml"
    path.write_text("extends: base.yaml\n" + textwrap.dedent(body))
    return path


def test_every_reader_of_the_port_reads_the_inserted_node(tmp_path: Path) -> None:
    path = child(tmp_path, """
        nodes:
          redact: {kind: regex_replace, config: {pattern: secret, replacement: "***"}}
        insert:
          - {node: redact, after: split.pieces}
        """)
    graph = load_graph(path)
    assert {str(e) for e in graph.edges} == {"split.pieces -> redact.text", "redact.text -> join.pieces"}
    assert str(graph.outputs["pieces"].src) == "redact.text"
    result = run_graph(graph)
    assert result.outputs["text"] == Text("a *** plan")
    assert "".join(p.text for p in result.outputs["pieces"]) == "a *** plan"


@pytest.mark.parametrize("insert, code", [
    ("{node: redact, after: join.pieces}", "unknown-edge"),                   # an input, not an output
    ("{node: redact, after: split.pieces, on: 'split.pieces -> join.pieces'}", "bad-value"),
    ("{node: redact}", "bad-value"),
])
def test_bad_insert_after_is_reported(tmp_path: Path, insert: str, code: str) -> None:
    path = child(tmp_path, f"""
        nodes:
          redact: {{kind: regex_replace, config: {{pattern: x}}}}
        insert:
          - {insert}
        """)
    with pytest.raises(GraphValidationError) as info:
        load_graph(path)
    assert code in {i.code for i in info.value.issues}
