"""Fuzzing the validator from graphs/demo.yaml: whatever the edit, the answer is a Graph or located issues.

Never another exception, and every issue has a code, a message and a place (file set, line >= 1).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnigraph.runtime.errors import GraphValidationError, Location
from omnigraph.runtime.graph import Graph
from omnigraph.runtime.validate import load_graph_text

ROOT = Path(__file__).resolve().parents[2]
DEMO_TEXT = (ROOT / "graphs" / "demo.yaml").read_text()
DEMO = yaml.safe_load(DEMO_TEXT)
KINDS = ["split_text", "join_text", "morse_synth", "regex_replace", "wav_writer", "jsonl_writer"]
PORTS = ["text", "pieces", "audio", "items", "file", "x"]
FILE = "fuzz.yaml"

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

names = st.one_of(st.sampled_from(["split", "morse", "join", "text", "audio", "nodes", "kind", "config", "to"]),
                  st.text(min_size=0, max_size=8))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(KINDS + ["a.b", "split.pieces -> morse.text"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(names, inner, max_size=3)), max_leaves=8)
endpoints = st.builds(lambda n, p: f"{n}.{p}", st.sampled_from(["split", "morse", "join", "nope"]),
                      st.sampled_from(PORTS))
edge_texts = st.one_of(st.builds(lambda a, b: f"{a} -> {b}", endpoints, endpoints), st.text(max_size=30))


def _containers(data: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every dict and list in `data`."""
    out = [path] if isinstance(data, (dict, list)) else []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        out += _containers(value, path + (key,))
    return out


def _at(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def edited_data(draw) -> Any:
    """demo.yaml's data after a few random structural edits."""
    data = copy.deepcopy(DEMO)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["delete", "rename", "kind", "ports", "edge", "insert", "node_name", "set"]))
        target = _at(data, draw(st.sampled_from(_containers(data)))) if _containers(data) else None
        if edit == "delete" and target:
            key = draw(st.sampled_from(list(target.keys()) if isinstance(target, dict) else range(len(target))))
            del target[key]
        elif edit == "rename" and isinstance(target, dict) and target:
            key = draw(st.sampled_from(list(target)))
            target[draw(names)] = target.pop(key)
        elif edit == "kind" and isinstance(data, dict) and isinstance(data.get("nodes"), dict) and data["nodes"]:
            node = draw(st.sampled_from(list(data["nodes"])))
            data["nodes"][node] = {"kind": draw(st.one_of(st.sampled_from(KINDS), st.text(max_size=12)))}
        elif edit == "ports" and isinstance(data, dict) and isinstance(data.get("edges"), list) and data["edges"]:
            i = draw(st.integers(0, len(data["edges"]) - 1))
            data["edges"][i] = f"{draw(endpoints)} -> {draw(endpoints)}"
        elif edit == "edge" and isinstance(data, dict):
            section = draw(st.sampled_from(["edges", "loops"]))
            if not isinstance(data.get(section), list):
                data[section] = []
            data[section].append(draw(edge_texts))
        elif edit == "node_name" and isinstance(data, dict) and isinstance(data.get("nodes"), dict):
            data["nodes"][draw(names)] = {"kind": draw(st.sampled_from(KINDS)), "config": draw(values)}
        elif edit == "insert" and isinstance(target, dict):
            target[draw(names)] = draw(values)
        elif edit == "insert" and isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(values))
        elif edit == "set" and isinstance(data, dict):
            data[draw(st.sampled_from(["name", "extends", "replace", "remove", "insert", "outputs", "inputs"]))] = \
                draw(values)
    return data


@st.composite
def edited_text(draw) -> str:
    """demo.yaml's text cut, spliced with random unicode, or with a slice replaced."""
    text = DEMO_TEXT
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["truncate", "insert", "replace"]))
        if edit == "truncate":
            text = text[:i]
        elif edit == "insert":
            text = text[:i] + draw(st.text(max_size=10)) + text[i:]
        else:
            j = draw(st.integers(i, min(len(text), i + 20)))
            text = text[:i] + draw(st.sampled_from([":", "-", " ", "\n", "[", "{", "'", '"', "&a", "*a", "!!x", "\t",
                                                    "<<: ", "->", "."])) + text[j:]
    return text


def check(text: str) -> None:
    try:
        graph = load_graph_text(text, file=FILE)
    except GraphValidationError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert isinstance(issue.code, str) and issue.code, issue
            assert isinstance(issue.message, str) and issue.message.strip(), issue
            assert isinstance(issue.where, Location) and issue.where.file, issue
            assert issue.where.line >= 1 and issue.where.col >= 1, issue
            str(issue)  # renders
    else:
        assert isinstance(graph, Graph)


@SETTINGS
@given(edited_data())
def test_structural_edits_never_crash(data):
    check(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@SETTINGS
@given(edited_text())
def test_text_edits_never_crash(text):
    check(text)


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    check(text)


def test_unedited_demo_validates():
    check(DEMO_TEXT)
    assert isinstance(load_graph_text(DEMO_TEXT, file=FILE), Graph)
