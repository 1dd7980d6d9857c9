"""WAV files are opened from their header alone (no FFmpeg stream analysis): every codec PyAV writes into WAV
decodes to the same samples and declared length as with the full analysis; other files get the analysis."""
from __future__ import annotations

import av
import numpy as np
import pytest

from media_files import sine, write_audio
from omnigraph.nodes.media_decode import decode as d
from test_audio_matrix import audio_encoders, try_write


def decoded(container, path):
    _, audio = d.streams_of(container)
    length = d.declared_seconds(container, [audio])
    return length, d.decode(container, path, None, audio, 2.0, 256, 3600.0)[2]


def test_every_codec_in_wav_decodes_from_the_header_as_with_the_full_analysis(tmp_path):
    av.logging.set_level(av.logging.PANIC)  # the wav muxer refusing codecs is expected
    compared = 0
    for i, codec in enumerate(audio_encoders()):
        path = tmp_path / f"{codec}.wav"
        if try_write(path, codec, "wav", i) is None:
            continue
        quick = d.header_described(path)
        if quick is None:  # a header that leaves something out: the full analysis opens it
            continue
        full = av.open(str(path), metadata_errors="replace")
        (quick_length, quick_samples), (full_length, full_samples) = decoded(quick, path), decoded(full, path)
        assert quick_length == full_length, codec
        assert np.array_equal(quick_samples, full_samples), codec
        compared += 1
    assert compared >= 5


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_other_containers_get_ffmpegs_stream_analysis(tmp_path, fmt):
    path = write_audio(tmp_path / f"tone.{fmt}", {"flac": "flac", "mp3": "libmp3lame"}[fmt], sine(0.3, 16000), 16000)
    assert d.header_described(path) is None
    assert d.open_container(path).format.name == fmt


def test_a_wav_header_announcing_no_audio_gets_the_full_analysis_and_its_error(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(16) + b"data\x00\x00\x00\x00")
    assert d.header_described(path) is None
