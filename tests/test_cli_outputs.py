"""`omnigraph run` output folders: checked before anything loads, written as a set (result.json last, with the
run's status), locked while a run writes them; writer nodes' files checked before the run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from omnigraph.cli import main
from omnigraph.runtime import registry as registry_module
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.node import Node
from omnigraph.runtime.payloads import Text
from omnigraph.runtime.ports import Input, Output
from omnigraph.runtime.registry import default_registry
from omnigraph.runtime.run_folder import MANIFEST_FILE, STAGING_PREFIX, RunFolder, default_out_dir

UNWRITABLE = "/proc/omnigraph-test/x"  # /proc refuses new entries, even to root
SPEECH = Path(__file__).parent / "fixtures" / "media" / "speech.wav"


class Fails(Node):
    """Fails on every run."""

    kind = "test_outputs_fails"
    inputs = (Input("text", Text),)
    outputs = (Output("text", Text),)

    def process(self, text: Text) -> dict[str, Any]:
        raise ValueError("kaboom inside the node")


def graph_file(tmp_path: Path, body: str, name: str = "g.yaml") -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def text_graph(tmp_path: Path, output: str) -> str:
    """A graph with one text output named `output`."""
    return graph_file(tmp_path, f"inputs: {{text: join.pieces}}\nnodes: {{join: {{kind: join_text}}}}\n"
                                f"outputs: {{{output}: join.text}}\n", f"{output}.yaml")


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["run", *args])
    return code, capsys.readouterr().err


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any weight load fails the test: what it checks must be reported before loading."""
    def load(self: LocalExecutor, stop: Any = None) -> None:
        raise AssertionError("loaded before the check")
    monkeypatch.setattr(LocalExecutor, "load", load)


@pytest.fixture
def failing_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_default", default_registry().extended(Fails))
    yield


@pytest.mark.parametrize("flag", ["--out", "--trace"])
def test_unwritable_out_or_trace_fails_before_loading(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                     no_loading: None, flag: str) -> None:
    paths = {"--out": str(tmp_path / "o"), "--trace": str(tmp_path / "t.json"), flag: UNWRITABLE}
    code, err = run(capsys, "captioner", "-i", f"audio={SPEECH}", "--out", paths["--out"], "--trace", paths["--trace"])
    assert code == 2 and UNWRITABLE in err and "Traceback" not in err, err


@pytest.mark.parametrize("kind,port", [("wav_writer", "audio"), ("jsonl_writer", "items")])
def test_writer_node_with_an_unwritable_path_fails_before_loading(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                  no_loading: None, kind: str, port: str) -> None:
    graph = graph_file(tmp_path, f"inputs: {{text: split.text}}\nnodes:\n  split: {{kind: split_text}}\n"
                                 f"  morse: {{kind: morse_synth}}\n"
                                 f"  w: {{kind: {kind}, config: {{path: {UNWRITABLE}}}}}\n"
                                 f"edges: [split.pieces -> morse.text, morse.audio -> w.{port}]\n"
                                 f"outputs: {{file: w.file}}\n")
    code, err = run(capsys, graph, "-i", "text=e", "--out", str(tmp_path / "o"))
    assert code == 2 and f"node 'w' ({kind}.path in {graph})" in err and UNWRITABLE in err, err


def test_writer_node_whose_path_became_a_folder_exits_2_naming_it(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "side.jsonl"
    graph = graph_file(tmp_path, f"inputs: {{text: split.text}}\nnodes:\n  split: {{kind: split_text}}\n"
                                 f"  w: {{kind: jsonl_writer, config: {{path: '{target}'}}}}\n"
                                 f"edges: [split.pieces -> w.items]\noutputs: {{file: w.file}}\n")
    from omnigraph.runtime import writable

    checked = writable.check_node_files
    def check_then_block(graph: Any) -> None:  # the path changes between the check and the run
        checked(graph)
        target.mkdir()
    monkeypatch.setattr(writable, "check_node_files", check_then_block)
    code, err = run(capsys, graph, "-i", "text=a b", "--out", str(tmp_path / "o"))
    assert code == 2 and str(target) in err and "it is a folder" in err and "Traceback" not in err, err
    assert json.loads((tmp_path / "o" / "result.json").read_text())["status"] == "failed"


def test_result_json_records_the_status_and_the_folder_holds_only_this_runs_files(
        capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run(capsys, text_graph(tmp_path, "first"), "-i", "text=a", "--out", str(out),
               "--trace", str(out / "trace.json"))[0] == 0
    (out / "mine.txt").write_text("not a run file")
    assert run(capsys, text_graph(tmp_path, "second"), "-i", "text=b", "--out", str(out))[0] == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok" and result["files"] == {"second": str(out / "second.txt")}
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert names == {"second.txt", "mine.txt", "result.json"}  # first.txt and the trace were the earlier run's


def test_a_failed_run_replaces_the_earlier_files_by_a_failed_result(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                    failing_kind: None) -> None:
    out = tmp_path / "o"
    assert run(capsys, "demo", "--out", str(out))[0] == 0
    graph = graph_file(tmp_path, "inputs: {text: f.text}\nnodes: {f: {kind: test_outputs_fails}}\n"
                                 "outputs: {text: f.text}\n")
    code, err = run(capsys, graph, "-i", "text=x", "--out", str(out), "--trace", str(tmp_path / "t.json"))
    assert code == 1 and "kaboom" in err
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "failed" and "kaboom" in result["error"] and result["files"] == {}
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {"result.json"}
    assert not (tmp_path / "t.json").exists()


def test_a_failed_trace_write_leaves_no_result_json(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from omnigraph.runtime.stats import RunStats

    def fail(self: RunStats, path: Path) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(RunStats, "write_trace", fail)
    out = tmp_path / "o"
    code, err = run(capsys, "demo", "--out", str(out), "--trace", str(tmp_path / "t.json"))
    assert code == 2 and "cannot write" in err and "No space left on device" in err, err
    assert not out.exists() and not (tmp_path / "t.json").exists()  # the folder the run made goes with it


def test_a_folder_in_the_way_exits_2_and_leaves_the_earlier_run_whole(capsys: pytest.CaptureFixture,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run(capsys, "demo", "-i", "text=first", "--out", str(out))[0] == 0
    (out / "audio.wav").unlink()
    (out / "audio.wav").mkdir()
    code, err = run(capsys, "demo", "-i", "text=second", "--out", str(out))
    assert code == 2 and str(out / "audio.wav") in err and "folder is in the way" in err, err
    assert (out / "text.txt").read_text() == "first"  # not a fresh text.txt beside the earlier result.json
    assert json.loads((out / "result.json").read_text())["outputs"]["text"] == "first"
    assert not list(out.glob(STAGING_PREFIX + "*"))


def test_a_second_run_into_a_locked_folder_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "o"
    with RunFolder(out):
        code, err = run(capsys, "demo", "--out", str(out))
    assert code == 2 and "is in use by another omnigraph run" in err and "another folder with --out" in err, err
    assert not (out / "result.json").exists()
    assert run(capsys, "demo", "--out", str(out))[0] == 0  # the lock went with the holder


def test_leftovers_of_a_killed_run_or_commit_are_cleaned(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "o"
    (out / f"{STAGING_PREFIX}killed").mkdir(parents=True)
    (out / "half.txt").write_text("from a commit cut short")
    (out / MANIFEST_FILE).write_text(json.dumps(["half.txt", "text.txt"]))
    assert run(capsys, "demo", "--out", str(out))[0] == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["audio.wav", "result.json",
                                                                                 "text.txt"]
    assert not list(out.glob(STAGING_PREFIX + "*"))


def test_a_folder_written_before_manifests_has_its_result_files_replaced(capsys: pytest.CaptureFixture,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "old.txt").write_text("an earlier run's output")
    (out / "result.json").write_text(json.dumps({"files": {"old": str(out / "old.txt")}}))
    assert run(capsys, "demo", "--out", str(out))[0] == 0
    assert not (out / "old.txt").exists() and (out / "text.txt").exists()


@pytest.mark.parametrize("name", ["../escape", "a/../../b", "/abs/path", ".", "", "a/b"])
def test_default_out_folder_stays_inside_out(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="does not name a folder inside"):
        default_out_dir(name, tmp_path / "out")


def test_default_out_folder_of_a_plain_name(tmp_path: Path) -> None:
    assert default_out_dir("demo", tmp_path / "out") == tmp_path / "out" / "demo"
