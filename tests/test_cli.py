"""The `omnigraph` command line: subcommands, output files, exit codes and messages.

Most tests call `omnigraph.cli.main` in-process (fast); a few run `python -m omnigraph` for real.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import soundfile

from omnigraph.cli import main
from omnigraph.runtime import registry as registry_module
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.payloads import FilePath, Text
from omnigraph.runtime.ports import Input, Output
from omnigraph.runtime.registry import default_registry


# -- helpers ----------------------------------------------------------------------------------------------
def cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m omnigraph ARGS` in tmp_path, as a user would run it (stdout/stderr are not terminals)."""
    return subprocess.run([sys.executable, "-m", "omnigraph", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


def run_main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def write_graph(tmp_path: Path, text: str, name: str = "g.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def assert_user_error(code: int, err: str, *needles: str) -> None:
    """Exit 2, an 'error:' message naming the problem, and no traceback."""
    assert code == 2, err
    assert "error" in err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


def run_demo(capsys: pytest.CaptureFixture, out: Path, *args: str) -> dict[str, Any]:
    code, _, err = run_main(capsys, "run", "demo", "--out", str(out), *args)
    assert code == 0, err
    return json.loads((out / "result.json").read_text())


# -- test-only node kinds -----------------------------------------------------------------------------------
class Boom(Node):
    """Fails on every run: with a UserError when the text is 'user', else with a ValueError."""

    kind = "test_cli_boom"
    inputs = (Input("text", Text),)
    outputs = (Output("text", Text),)

    def process(self, text: Text) -> dict[str, Any]:
        if text.text == "user":
            raise UserError("the text 'user' is not allowed here")
        raise ValueError("kaboom inside the node")


class FileSize(Node):
    """Takes a file path (checked when the CLI parses --input) and reports its size as text."""

    kind = "test_cli_file_size"

    class Config(NodeConfig):
        pass

    inputs = (Input("file", FilePath),)
    outputs = (Output("size", Text),)

    def process(self, file: FilePath) -> dict[str, Any]:
        return {"size": Text(str(Path(file.path).stat().st_size))}


BOOM_GRAPH = """
inputs: {text: boom.text}
nodes:
  boom: {kind: test_cli_boom}
outputs: {text: boom.text}
"""

FILE_GRAPH = """
inputs: {file: {to: [size.file], required: true}}
nodes:
  size: {kind: test_cli_file_size}
outputs: {size: size.size}
"""


@pytest.fixture
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_default", default_registry().extended(Boom, FileSize))
    yield


# -- real subprocesses: one per subcommand --------------------------------------------------------------------
def test_subprocess_run_demo_writes_outputs_result_and_trace(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "demo", "--input", "text=sos help", "--out", "o", "--trace", "trace.json")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "o"
    assert (out / "text.txt").read_text() == "sos help"
    samples, rate = soundfile.read(out / "audio.wav", dtype="float32")
    info = soundfile.info(out / "audio.wav")
    assert rate == 24000 and info.subtype == "FLOAT"
    assert samples.dtype == np.float32 and samples.ndim == 1 and np.abs(samples).max() > 0.1
    result = json.loads((out / "result.json").read_text())
    assert result["outputs"]["text"] == "sos help"
    assert result["outputs"]["audio"]["sample_rate"] == 24000
    assert result["outputs"]["audio"]["num_samples"] == len(samples)
    assert set(result["files"]) == {"text", "audio"}
    assert result["missing"] == {}
    assert set(result["timings"]["nodes"]) == {"split", "morse", "join"}
    assert result["timings"]["wall_s"] > 0
    # The files it wrote are listed on stdout; stderr is not a terminal, so no progress line.
    assert "text.txt" in proc.stdout and "audio.wav" in proc.stdout and "result.json" in proc.stdout
    assert "\r" not in proc.stderr and "\033" not in proc.stderr
    trace = json.loads((tmp_path / "trace.json").read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["name"] for e in spans) == ["join", "morse", "split"]
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in spans)


def test_subprocess_validate_reports_every_problem_with_exit_2(tmp_path: Path) -> None:
    bad = write_graph(tmp_path, """
        nodes:
          split: {kind: split_txt}
          join: {kind: join_text, config: {separatr: " "}}
        """)
    proc = cli(tmp_path, "validate", "demo", bad)
    assert proc.returncode == 2
    assert "ok:" in proc.stdout and "demo.yaml" in proc.stdout
    first_line = proc.stderr.splitlines()[0]
    assert first_line.startswith("error: ") and first_line.endswith(" problems in graph:")  # as in the README
    assert f"{bad}:3:" in proc.stderr and f"{bad}:4:" in proc.stderr  # file:line of each problem
    assert "unknown-kind" in proc.stderr and "did you mean 'split_text'" in proc.stderr
    assert "unknown-field" in proc.stderr and "separatr" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subprocess_show_nodes_and_schema(tmp_path: Path) -> None:
    show = cli(tmp_path, "show", "demo", "--format", "mermaid")
    assert show.returncode == 0 and show.stdout.startswith("flowchart")
    nodes = cli(tmp_path, "nodes", "split_text")
    assert nodes.returncode == 0 and nodes.stdout.startswith("split_text:")
    schema = cli(tmp_path, "schema")
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "omnigraph graph file"


def test_subprocess_user_error_has_no_traceback(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "dmeo")
    assert proc.returncode == 2
    assert "did you mean 'demo'" in proc.stderr and "Traceback" not in proc.stderr


# -- validate -------------------------------------------------------------------------------------------
def test_validate_ok_by_name_and_by_path(capsys: pytest.CaptureFixture) -> None:
    demo = Path(__file__).parents[1] / "graphs" / "demo.yaml"
    code, out, err = run_main(capsys, "validate", "demo", str(demo))
    assert code == 0, err
    assert out.count("ok:") == 2 and "3 nodes, 2 edges" in out


def test_validate_missing_file_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_main(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert_user_error(code, err, "nope.yaml", "not found")


def test_validate_says_what_is_not_a_graph_file_and_checks_every_file(tmp_path: Path) -> None:
    """A directory, a FIFO (never opened: reading it would block) or a symlink loop, given directly or as
    `extends:`, is named for what it is; the files after it are still checked."""
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    for name in ("fifo", "dir", "loop"):
        (tmp_path / f"x_{name}.yaml").write_text(f"extends: {name}.yaml\n")
    (tmp_path / "good.yaml").write_text("extends: demo\n")
    files = ["good.yaml", "loop.yaml", "dir.yaml", "fifo.yaml", "x_fifo.yaml", "x_dir.yaml", "x_loop.yaml", "good.yaml"]
    proc = cli(tmp_path, "validate", *files)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.count("ok:") == 2
    for name, what in (("loop", "is a symlink loop"), ("dir", "is a directory"), ("fifo", "is a named pipe")):
        assert f"graph file '{name}.yaml' {what}" in proc.stderr
        assert f"x_{name}.yaml:1:10: extends-missing: graph file '{name}.yaml' {what}" in proc.stderr


# -- show -----------------------------------------------------------------------------------------------
def test_show_text_is_the_default(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_main(capsys, "show", "demo")
    assert code == 0
    for needle in ("split (split_text)", "morse (morse_synth)", "join (join_text)", "split.pieces ==> morse.text"):
        assert needle in out


@pytest.mark.parametrize("fmt, needle", [("text", "==>"), ("mermaid", "==>"), ("dot", "style=bold")])
def test_show_formats_to_stdout_and_to_a_file(capsys: pytest.CaptureFixture, tmp_path: Path, fmt: str,
                                              needle: str) -> None:
    code, out, _ = run_main(capsys, "show", "demo", "--format", fmt)
    assert code == 0 and needle in out
    target = tmp_path / f"demo.{fmt}"
    code, printed, _ = run_main(capsys, "show", "demo", "--format", fmt, "-o", str(target))
    assert code == 0 and str(target) in printed
    assert target.read_text() == out


def test_show_svg_and_png_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert run_main(capsys, "show", "demo", "--format", "svg", "-o", str(tmp_path / "g.svg"))[0] == 0
    assert "<svg" in (tmp_path / "g.svg").read_text()
    assert run_main(capsys, "show", "demo", "--format", "png", "-o", str(tmp_path / "g.png"))[0] == 0
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_show_picture_without_output_file_exits_2(capsys: pytest.CaptureFixture, fmt: str) -> None:
    code, out, err = run_main(capsys, "show", "demo", "--format", fmt)
    assert_user_error(code, err, f"--format {fmt} needs -o FILE")
    assert out == ""


def test_show_placement(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    graph = write_graph(tmp_path, """
        inputs: {text: split.text}
        nodes:
          split: {kind: split_text, placement: {group: speech, num_gpus: 1}}
          join: {kind: join_text}
        edges: [split.pieces -> join.pieces]
        outputs: {text: join.text}
        """)
    code, out, _ = run_main(capsys, "show", graph)
    assert code == 0
    assert "split (split_text) [group=speech, gpus=1]" in out
    assert "join (join_text)\n" in out  # no placement set: nothing shown


def test_show_unwritable_output_is_a_user_error(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "g.txt"
    code, _, err = run_main(capsys, "show", "demo", "-o", str(target))
    assert_user_error(code, err, "cannot write", str(target))
    code, _, err = run_main(capsys, "show", "demo", "--format", "png", "-o", str(target.with_suffix(".png")))
    assert_user_error(code, err, "cannot write")


def test_show_bad_graph_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    graph = write_graph(tmp_path, "nodes: {a: {kind: nope}}\n")
    code, _, err = run_main(capsys, "show", graph)
    assert_user_error(code, err, "unknown-kind", "nope")


# -- nodes ----------------------------------------------------------------------------------------------
def test_nodes_lists_every_registered_kind(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_main(capsys, "nodes")
    assert code == 0
    kinds = default_registry().kinds()
    assert len(kinds) >= 6
    headers = [line.split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert headers == kinds


def test_nodes_kind_shows_ports_fields_defaults_and_docs(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_main(capsys, "nodes", "morse_synth")
    assert code == 0
    assert out.startswith("morse_synth: speaks a text stream as Morse code")  # the kind is not said twice
    assert "text: Text*  - Text pieces to key." in out
    assert "audio: AudioChunk*  - One chunk per text piece." in out
    assert "wpm: float (default 20.0)  - Speed in words per minute" in out
    assert "sample_rate: int (default 24000)" in out
    assert "split_text" not in out


def test_nodes_shows_choices_and_required_fields(capsys: pytest.CaptureFixture) -> None:
    _, out, _ = run_main(capsys, "nodes", "split_text")
    assert "unit: Literal['words', 'chars', 'lines'] (default 'words')" in out
    _, out, _ = run_main(capsys, "nodes", "jsonl_writer")
    assert "path: str (required)" in out


def test_nodes_unknown_kind_exits_2_with_did_you_mean(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(capsys, "nodes", "morse")
    assert_user_error(code, err, "unknown node kind 'morse'", "did you mean 'morse_synth'")


# -- schema ---------------------------------------------------------------------------------------------
def test_schema_prints_json_and_writes_a_file(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, out, _ = run_main(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    target = tmp_path / "graph.schema.json"
    assert run_main(capsys, "schema", "-o", str(target))[0] == 0
    assert json.loads(target.read_text()) == schema


# -- run: outputs ---------------------------------------------------------------------------------------
def test_run_result_json_records_inputs_seed_and_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    result = run_demo(capsys, tmp_path / "o", "--input", "text=hi there", "--seed", "7")
    assert result["graph"] == "demo" and result["graph_file"].endswith("demo.yaml")
    assert result["inputs"] == {"text": "hi there"} and result["seed"] == 7
    assert result["outputs"]["text"] == "hi there"
    assert Path(result["files"]["audio"]).name == "audio.wav"
    assert Path(result["files"]["text"]).read_text() == "hi there"
    assert result["timings"]["executor"] == "local"


def test_run_uses_the_input_default(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    result = run_demo(capsys, tmp_path / "o")
    assert result["outputs"]["text"] == "hello from omnigraph"


def test_run_default_out_folder_is_out_slash_graph_name(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_main(capsys, "run", "demo", "-i", "text=ok")
    assert code == 0
    assert (tmp_path / "out" / "demo" / "text.txt").read_text() == "ok"
    assert str(Path("out") / "demo" / "result.json") in out


@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", ".."])
def test_graph_name_that_would_leave_out_is_rejected(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The default output folder is out/<name>: a name follows the name rule, so it never points elsewhere."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    graph = write_graph(work, f"extends: demo\nname: '{name}'\n")
    code, _, err = run_main(capsys, "run", graph, "-i", "text=ok")
    assert_user_error(code, err, "bad-name", f"graph name '{name}'", f"{graph}:2:7")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "g.yaml"]  # nothing written


def test_default_name_from_an_odd_file_name_stays_inside_out(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    graph = write_graph(tmp_path, "extends: demo\n", name="...yaml")  # its stem is '..'
    code, out, err = run_main(capsys, "run", graph, "-i", "text=ok")
    assert code == 0, err
    assert (tmp_path / "out" / "__" / "text.txt").read_text() == "ok"


def test_run_progress_line_only_on_a_terminal(capsys: pytest.CaptureFixture, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_main(capsys, "run", "demo", "--out", str(tmp_path / "a"))
    assert code == 0 and err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run_main(capsys, "run", "demo", "--out", str(tmp_path / "b"))
    assert code == 0
    assert "\r\033[K[demo]" in err
    assert err.endswith("\r\033[K")  # the line is cleared at the end


def test_run_trace_is_chrome_trace_json(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    run_demo(capsys, tmp_path / "o", "--trace", str(tmp_path / "traces" / "t.json"))
    trace = json.loads((tmp_path / "traces" / "t.json").read_text())
    assert {e["name"] for e in trace["traceEvents"] if e["ph"] == "X"} == {"split", "morse", "join"}
    assert all({"ph", "pid", "name"} <= set(e) for e in trace["traceEvents"])


def test_run_trace_unwritable_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    (tmp_path / "t.json").mkdir()
    code, _, err = run_main(capsys, "run", "demo", "--out", str(tmp_path / "o"), "--trace", str(tmp_path / "t.json"))
    assert_user_error(code, err, "cannot write", "t.json")


def test_run_out_that_is_a_file_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    (tmp_path / "o").write_text("")
    code, _, err = run_main(capsys, "run", "demo", "--out", str(tmp_path / "o"))
    assert_user_error(code, err, "cannot create output folder")


def test_run_empty_text_stream_output_is_an_empty_txt(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    graph = write_graph(tmp_path, """
        inputs: {text: split.text}
        nodes: {split: {kind: split_text}}
        outputs: {pieces: split.pieces}
        """)
    code, _, err = run_main(capsys, "run", graph, "--input", "text=", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert (tmp_path / "o" / "pieces.txt").read_text() == ""
    assert json.loads((tmp_path / "o" / "result.json").read_text())["outputs"]["pieces"] == ""


def test_run_output_named_result_does_not_clobber_result_json(capsys: pytest.CaptureFixture,
                                                               tmp_path: Path) -> None:
    graph = write_graph(tmp_path, f"""
        inputs: {{text: split.text}}
        nodes:
          split: {{kind: split_text}}
          morse: {{kind: morse_synth}}
          wav: {{kind: wav_writer, config: {{path: "{tmp_path / 'side.wav'}"}}}}
        edges: [split.pieces -> morse.text, morse.audio -> wav.audio]
        outputs: {{result: wav.file}}
        """)
    code, _, err = run_main(capsys, "run", graph, "--input", "text=e", "--out", str(tmp_path / "o"))
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "result.json").read_text())
    assert summary["outputs"]["result"] == str(tmp_path / "side.wav")
    assert json.loads(Path(summary["files"]["result"]).read_text()) == str(tmp_path / "side.wav")


# -- run: --set ----------------------------------------------------------------------------------------
def test_set_wpm_changes_the_audio_length(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    fast = run_demo(capsys, tmp_path / "fast", "-i", "text=abc", "--set", "morse.wpm=24")
    slow = run_demo(capsys, tmp_path / "slow", "-i", "text=abc", "--set", "morse.wpm=12")
    assert slow["outputs"]["audio"]["num_samples"] == 2 * fast["outputs"]["audio"]["num_samples"]
    assert soundfile.info(tmp_path / "slow" / "audio.wav").frames == slow["outputs"]["audio"]["num_samples"]


def test_set_split_unit_changes_piece_counts(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    words = run_demo(capsys, tmp_path / "w", "-i", "text=hi there")
    chars = run_demo(capsys, tmp_path / "c", "-i", "text=hi there", "-s", "split.unit=chars")
    assert words["timings"]["nodes"]["split"]["items_out"] == {"pieces": 2}
    assert chars["timings"]["nodes"]["split"]["items_out"] == {"pieces": 8}
    assert chars["timings"]["nodes"]["morse"]["items_in"] == {"text": 8}
    assert chars["outputs"]["text"] == "hi there"


@pytest.mark.parametrize("flag, needles", [
    ("mors.wpm=10", ("unknown-node", "no node named 'mors'", "did you mean 'morse'")),
    ("morse.speed=10", ("unknown-field", "speed", "wpm")),
    ("morse.wpm=fast", ("bad-config", "--set morse.wpm", "valid number")),
    ("morse.wpm=0", ("bad-config", "--set morse.wpm", "greater than 0")),
    ("split.unit=sentences", ("bad-config", "--set split.unit", "'words'")),
    ("morsewpm", ("expected NODE.FIELD=VALUE",)),
    ("morse.wpm", ("expected NODE.FIELD=VALUE",)),
    (".wpm=3", ("expected NODE.FIELD=VALUE",)),
])
def test_bad_set_exits_2_with_a_clear_message(capsys: pytest.CaptureFixture, tmp_path: Path, flag: str,
                                             needles: tuple[str, ...]) -> None:
    code, _, err = run_main(capsys, "run", "demo", "--out", str(tmp_path / "o"), "--set", flag)
    assert_user_error(code, err, *needles)
    assert not (tmp_path / "o").exists()  # nothing ran


@pytest.mark.parametrize("args, named, not_named", [
    (("qwen3_omni", "--max-new-tokens", "0"), "--max-new-tokens: bad-config", "--set"),
    (("demo", "--set", "*.bogus=1"), "--set *.bogus: unknown-field", "--bogus"),
])
def test_flag_problems_name_what_the_user_typed(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                 args: tuple[str, ...], named: str, not_named: str) -> None:
    code, _, err = run_main(capsys, "run", *args, "--out", str(tmp_path / "o"))
    assert_user_error(code, err, named)
    assert not_named not in err


# -- run: inputs and graph references ------------------------------------------------------------------------
def test_unknown_input_exits_2_with_did_you_mean(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_main(capsys, "run", "demo", "--out", str(tmp_path / "o"), "--input", "txt=hi")
    assert_user_error(code, err, "no input 'txt'", "did you mean 'text'")


def test_malformed_input_flag_exits_2(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(capsys, "run", "demo", "--input", "text")
    assert_user_error(code, err, "expected NAME=VALUE")


def test_unknown_shipped_graph_exits_2_with_did_you_mean(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(capsys, "run", "dem")
    assert_user_error(code, err, "no shipped graph named 'dem'", "did you mean 'demo'")


def test_missing_graph_file_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_main(capsys, "run", str(tmp_path / "missing.yaml"))
    assert_user_error(code, err, "missing.yaml", "not found")


def test_invalid_graph_file_exits_2_listing_problems(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    graph = write_graph(tmp_path, "nodes:\n  split: {kind: split_text}\nedges: [split.pieces -> nowhere.text]\n")
    code, _, err = run_main(capsys, "run", graph)
    assert_user_error(code, err, "unknown-node", "nowhere", "g.yaml:3")


def test_missing_input_file_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path, test_kinds: None) -> None:
    graph = write_graph(tmp_path, FILE_GRAPH)
    code, _, err = run_main(capsys, "run", graph, "--input", f"file={tmp_path / 'nope.bin'}")
    assert_user_error(code, err, "input 'file'", "nope.bin", "does not exist")


def test_required_input_not_given_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path, test_kinds: None) -> None:
    code, _, err = run_main(capsys, "run", write_graph(tmp_path, FILE_GRAPH))
    assert_user_error(code, err, "needs input 'file'")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_input_file_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path, test_kinds: None) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"x")
    secret.chmod(0)
    code, _, err = run_main(capsys, "run", write_graph(tmp_path, FILE_GRAPH), "-i", f"file={secret}")
    assert_user_error(code, err, "not readable")


def test_input_file_is_read(capsys: pytest.CaptureFixture, tmp_path: Path, test_kinds: None) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"12345")
    code, _, err = run_main(capsys, "run", write_graph(tmp_path, FILE_GRAPH), "-i", f"file={data}",
                            "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert (tmp_path / "o" / "size.txt").read_text() == "5"


# -- run: failures ------------------------------------------------------------------------------------------
def test_failing_node_exits_1_naming_it_without_traceback(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                         test_kinds: None) -> None:
    code, _, err = run_main(capsys, "run", write_graph(tmp_path, BOOM_GRAPH), "-i", "text=x",
                            "--out", str(tmp_path / "o"))
    assert code == 1
    assert "node 'boom' (test_cli_boom) failed" in err and "kaboom inside the node" in err
    assert "--debug" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_failing_node_with_debug_shows_the_traceback(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                     test_kinds: None, where: str) -> None:
    args = ["run", write_graph(tmp_path, BOOM_GRAPH), "-i", "text=x", "--out", str(tmp_path / "o")]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    code, _, err = run_main(capsys, *args)
    assert code == 1
    assert "Traceback" in err and "ValueError: kaboom inside the node" in err
    assert "in process" in err  # the node's own frame is in it


def test_node_raising_user_error_exits_2(capsys: pytest.CaptureFixture, tmp_path: Path, test_kinds: None) -> None:
    code, _, err = run_main(capsys, "run", write_graph(tmp_path, BOOM_GRAPH), "-i", "text=user",
                            "--out", str(tmp_path / "o"))
    assert_user_error(code, err, "boom", "the text 'user' is not allowed here")


def test_internal_error_exits_1_with_traceback_only_in_debug(capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from omnigraph.runtime import render

    def broken(graph: object) -> str:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(render, "to_text", broken)
    code, _, err = run_main(capsys, "show", "demo")
    assert code == 1
    assert "internal error: RuntimeError: renderer exploded" in err and "Traceback" not in err
    code, _, err = run_main(capsys, "--debug", "show", "demo")
    assert code == 1 and "Traceback" in err


# -- argparse --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["run"],
    ["run", "demo", "--bogus"],
    ["run", "demo", "--executor", "dask"],
    ["run", "demo", "--seed", "many"],
    ["show", "demo", "--format", "jpg"],
])
def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture, args: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err
