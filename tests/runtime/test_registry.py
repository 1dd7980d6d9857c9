"""The registry: built-in kinds, third-party kinds from entry points, and the node contract around it."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omnigraph.runtime.errors import UserError
from omnigraph.runtime.node import Node
from omnigraph.runtime.registry import Registry, build_registry, default_registry

THIRD_PARTY = '''
from typing import Iterator
from omnigraph import Input, Node, Output
from omnigraph.runtime.payloads import Text

class Echo(Node):
    kind = "echo"
    inputs = (Input("text", Text),)
    outputs = (Output("text", Text),)

    def process(self, text):
        return {"text": Text(text.text * 2)}
'''


def _install_fake_distribution(root: Path, target: str = "echo_nodes:Echo") -> None:
    (root / "echo_nodes.py").write_text(THIRD_PARTY)
    info = root / "echo_nodes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-nodes\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[omnigraph.nodes]\necho = {target}\n")


def test_builtin_kinds_are_registered() -> None:
    kinds = default_registry().kinds()
    for kind in ("split_text", "join_text", "morse_synth", "regex_replace", "wav_writer", "jsonl_writer"):
        assert kind in kinds


def test_entry_point_kinds_are_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = build_registry()
    assert "echo" in registry and registry.get("echo").__module__ == "echo_nodes"


def test_third_party_kind_runs_from_the_command_line(tmp_path: Path) -> None:
    _install_fake_distribution(tmp_path)
    graph = tmp_path / "g.yaml"
    graph.write_text(textwrap.dedent("""
        inputs: {text: echo.text}
        nodes: {echo: {kind: echo}}
        outputs: {text: echo.text}
        """))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "omnigraph", "run", str(graph), "--input", "text=ab",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "text.txt").read_text() == "abab"


def test_broken_entry_point_is_a_clear_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(tmp_path, target="echo_nodes:Missing")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="entry point 'echo = echo_nodes:Missing'"):
        build_registry()


def test_a_kind_is_registered_once() -> None:
    class A(Node):
        kind = "dup"

    class B(Node):
        kind = "dup"

    registry = Registry()
    registry.register(A)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(B)
    with pytest.raises(TypeError):
        registry.register(object)  # type: ignore[arg-type]


def test_load_runs_setup_once() -> None:
    calls = []

    class Heavy(Node):
        kind = "heavy"

        def setup(self, device, checkpoint):
            calls.append(device)

    node = Heavy()
    node.load("cpu")
    node.load("cpu")
    assert calls == ["cpu"]


def test_constructing_a_node_is_cheap_and_validates_nothing_heavy() -> None:
    node = default_registry().get("morse_synth")()
    assert node.config.wpm == 20 and node.name == "morse_synth"
