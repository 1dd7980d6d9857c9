"""Payload conversions and the port compatibility rule."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omnigraph.runtime.errors import UserError
from omnigraph.runtime.payloads import AudioChunk, FilePath, Payload, Text, Waveform
from omnigraph.runtime.ports import Input, Output, feed_problem


class Shouted(Text):
    pass


def test_feed_rule() -> None:
    assert feed_problem(Output("o", Text), Input("i", Text)) is None
    assert feed_problem(Output("o", Shouted), Input("i", Text)) is None  # subclass feeds its base
    assert feed_problem(Output("o", Text), Input("i", Payload)) is None  # Payload accepts anything
    assert feed_problem(Output("o", Text), Input("i", Shouted))[0] == "type-mismatch"
    assert feed_problem(Output("o", Text, stream=True), Input("i", Text))[0] == "mode-mismatch"
    assert feed_problem(Output("o", AudioChunk, stream=True), Input("i", Text, stream=True))[0] == "type-mismatch"


def test_file_path_from_cli(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"x")
    assert FilePath.from_cli(str(path)) == FilePath(str(path))
    with pytest.raises(UserError, match="does not exist"):
        FilePath.from_cli(str(tmp_path / "missing.wav"))
    with pytest.raises(UserError, match="does not exist or is not a file"):
        FilePath.from_cli(str(tmp_path))


def test_audio_chunks_join_into_a_waveform(tmp_path: Path) -> None:
    chunks = [AudioChunk(torch.ones(3) * i, 24000, i) for i in range(3)]
    wave = AudioChunk.join(chunks)
    assert isinstance(wave, Waveform) and wave.samples.tolist() == [0.0] * 3 + [1.0] * 3 + [2.0] * 3
    assert wave.save(tmp_path / "w").suffix == ".wav"
    with pytest.raises(ValueError, match="sample rate"):
        AudioChunk.join([AudioChunk(torch.ones(1), 24000), AudioChunk(torch.ones(1), 16000)])


def test_text_saves_as_txt_and_other_payloads_as_json(tmp_path: Path) -> None:
    assert Text.join([Text("a"), Text("b")]) == Text("ab")
    assert Text("hi").save(tmp_path / "t").read_text() == "hi"
    assert FilePath("x").save(tmp_path / "f").read_text() == '"x"'
    with pytest.raises(UserError, match="cannot be given on the command line"):
        Waveform.from_cli("x")
