"""Sinks write as items arrive and hand back the file they wrote."""
from __future__ import annotations

import json
from pathlib import Path

import soundfile
import torch

from omnigraph.runtime.payloads import AudioChunk, FilePath, Text
from omnigraph.testing import run_node


def test_wav_writer_writes_float_audio(tmp_path: Path) -> None:
    chunks = [AudioChunk(torch.linspace(-0.5, 0.5, 100), 16000, i) for i in range(3)]
    path = tmp_path / "sub" / "a.wav"
    out = run_node("wav_writer", {"audio": chunks}, {"path": str(path)})
    assert out["file"] == FilePath(str(path))
    data, rate = soundfile.read(path, dtype="float32")
    assert rate == 16000 and soundfile.info(path).subtype == "FLOAT"
    assert torch.allclose(torch.from_numpy(data), torch.cat([c.samples for c in chunks]))


def test_wav_writer_with_no_audio_writes_nothing(tmp_path: Path) -> None:
    out = run_node("wav_writer", {"audio": []}, {"path": str(tmp_path / "a.wav")})
    assert "file" not in out and not (tmp_path / "a.wav").exists()


def test_jsonl_writer_accepts_any_payload(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    items = [Text("a"), AudioChunk(torch.zeros(4), 8000, 2), FilePath("x")]
    run_node("jsonl_writer", {"items": items}, {"path": str(path)})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == ["a", {"index": 2, "sample_rate": 8000, "num_samples": 4}, "x"]
    run_node("jsonl_writer", {"items": [Text("b")]}, {"path": str(path), "append": True})
    assert path.read_text().splitlines()[-1] == '"b"'
