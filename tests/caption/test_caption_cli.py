"""`omnigraph caption` refuses bad use before anything loads: exit 2, a message naming what and how to fix."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from omnigraph.cli import main


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros(1600, np.float32), 16000)
    return path


def refused(capsys, *args: str) -> str:
    """`omnigraph caption ARGS` exits 2 with an error message and no traceback; that message."""
    assert main(["caption", *args]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("args, needle", [
    (["{tmp}/nope.wav", "--out", "{tmp}/o.jsonl"], "input '{tmp}/nope.wav' does not exist"),
    (["{tmp}/*.mp3", "--out", "{tmp}/o.jsonl"], "the pattern matches no file"),
    (["{clip}", "--out", "{tmp}/o.csv"], "give a .jsonl or .parquet file"),
    (["{clip}", "--out", "{tmp}/o.jsonl", "--workers", "2"], "--ray-address and --workers apply only with"),
    (["{clip}", "--out", "{tmp}/o.jsonl", "--graph", "demo"], "needs an input named 'audio'"),
    (["{clip}", "--out", "{tmp}/o.jsonl", "--graph", "nosuchgraph"], "nosuchgraph"),
    (["{clip}", "--out", "{tmp}/o.jsonl", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["{tmp}/m.jsonl", "--out", "{tmp}/o.jsonl"], "m.jsonl:1: bad manifest row"),
    (["{clip}", "--out", "{tmp}/done.jsonl"], "already holds 1 records; pass --resume"),
])
def test_bad_use_is_exit_2_with_a_clear_message(tmp_path, clip, capsys, args, needle):
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "x"}) + "\n")
    (tmp_path / "done.jsonl").write_text(json.dumps({"id": "x", "status": "ok"}) + "\n")
    fill = {"tmp": str(tmp_path), "clip": str(clip)}
    err = refused(capsys, *[a.format(**fill) for a in args])
    assert needle.format(**fill) in err, err


@pytest.mark.parametrize("flag, value", [("--batch-size", "0"), ("--window-seconds", "-1"),
                                         ("--window-seconds", "nan"), ("--limit", "x")])
def test_bad_numbers_are_refused_by_the_parser(clip, tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit:
        main(["caption", str(clip), "--out", str(tmp_path / "o.jsonl"), flag, value])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and flag in err and "Traceback" not in err
