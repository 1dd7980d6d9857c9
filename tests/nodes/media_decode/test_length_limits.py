"""media_decode's max_seconds: refused from the header before decoding, and, when the header says nothing (or
lies), decoding stops as soon as the limit is passed. An 18-hour WAV is a sparse file: 2 GB that takes no disk."""
from __future__ import annotations

import struct

import pytest

from media_files import sine, write_audio, write_video
from omnigraph.nodes.media_decode import decode as decode_module
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import FilePath
from omnigraph.testing import run_node

RATE = 16000


def sparse_wav(path, seconds: float):
    """A 16 kHz mono PCM WAV whose header declares `seconds` of silence, the body a hole in the file."""
    data = int(seconds * RATE) * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)  # PCM, mono, 16 bits
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", data)
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + data)
    return path


def refusal(path, **config) -> str:
    with pytest.raises(NodeFailed) as info:
        run_node("media_decode", {"path": FilePath(str(path))}, config)
    assert isinstance(info.value.error, UserError) and str(path) in str(info.value.error)
    return str(info.value.error)


def test_an_18_hour_wav_is_refused_from_its_header(tmp_path):
    message = refusal(sparse_wav(tmp_path / "long.wav", 18 * 3600))
    assert "is 18:00:00 (64800 s) long (its header says so), over media_decode's limit of 3600 s" in message
    assert "raise media_decode's max_seconds" in message


def test_a_file_without_a_length_stops_decoding_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "declared_seconds", lambda container, streams: None)
    # Were decoding not stopped, this would decode 18 hours (minutes, gigabytes) before failing.
    message = refusal(sparse_wav(tmp_path / "long.wav", 18 * 3600), max_seconds=2)
    assert "is longer than media_decode's limit of 2 s (decoding stopped there; its header gave no length)" in message


def test_a_header_that_understates_the_length(tmp_path, monkeypatch):
    monkeypatch.setattr(decode_module, "declared_seconds", lambda container, streams: 0.1)
    path = write_video(tmp_path / "v.mp4", "libx264", n_frames=20, rate=10, audio_codec="aac")
    assert "limit of 1 s (decoding stopped there; its header gave 0.10 s)" in refusal(path, max_seconds=1)
    wav = write_audio(tmp_path / "a.wav", "pcm_s16le", sine(2.0, 22050, channels=1), 22050)
    assert "limit of 1.5 s" in refusal(wav, max_seconds=1.5)


def test_files_within_the_limit_decode(tmp_path):
    wav = write_audio(tmp_path / "a.wav", "pcm_s16le", sine(2.0, 22050, channels=1), 22050)
    assert run_node("media_decode", {"path": FilePath(str(wav))}, {"max_seconds": 2.5})["audio"].seconds == \
        pytest.approx(2.0, abs=0.01)
    assert "is 0:00:02 (2 s) long" in refusal(wav, max_seconds=1.5)
