"""vad: Silero on generated signals (silence, Piper speech, silence), whole and streamed."""
from __future__ import annotations

import sys

import pytest
import torch

from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import AudioChunk, Waveform
from omnigraph.testing import run_node
from speech_audio import audible_span, spoken, with_silence

TOLERANCE = 0.4  # seconds: segment edges lie within this of the audible speech (pad 0.2 s, Silero lags ~0.15 s)


def test_one_segment_where_the_speech_is_and_its_clip() -> None:
    speech = spoken("The library opens at nine in the morning and closes at six.")
    audio = with_silence(speech, before=1.5, after=2.0)
    begin, end = audible_span(audio)
    out = run_node("vad", {"audio": audio})
    [segment] = out["segments"]
    assert begin - TOLERANCE <= segment.start <= begin and end <= segment.end <= end + TOLERANCE, (segment,
                                                                                                 begin, end)
    [clip] = out["speech"]
    assert clip.sample_rate == 16000 and clip.start == segment.start
    assert clip.end == pytest.approx(segment.end, abs=1e-6)
    assert clip.samples[:1600].abs().max() < 0.02  # the clip starts (0.1 s at least) before the speech


def test_a_chunk_stream_gives_the_segments_of_the_whole_waveform() -> None:
    audio = with_silence(spoken("Please close the door. Then turn off the light."), before=0.7, after=1.0)
    whole = run_node("vad", {"audio": audio})["segments"]
    step = 3001  # odd-sized chunks that cut frames anywhere
    chunks = [AudioChunk(audio.samples[i:i + step], audio.sample_rate, k)
              for k, i in enumerate(range(0, audio.samples.shape[0], step))]
    assert run_node("vad", {"chunks": chunks})["segments"] == whole
    assert len(whole) == 1  # a sentence pause is shorter than min_silence


def test_silence_and_noise_give_no_segment() -> None:
    torch.manual_seed(0)
    assert run_node("vad", {"audio": Waveform(torch.zeros(48000), 16000)}) == {"speech": [], "segments": []}
    noise = Waveform(0.01 * torch.randn(32000), 16000)
    assert run_node("vad", {"audio": noise})["segments"] == []
    assert run_node("vad", {"chunks": []}) == {"speech": [], "segments": []}


def test_no_input_or_two_rates_are_clear_errors() -> None:
    with pytest.raises(NodeFailed, match="exactly one of `audio`") as info:
        run_node("vad", {})
    assert isinstance(info.value.error, UserError)
    chunks = [AudioChunk(torch.zeros(1600), 16000, 0), AudioChunk(torch.zeros(800), 8000, 1)]
    with pytest.raises(NodeFailed, match="changes sample rate from 16000 Hz to 8000 Hz"):
        run_node("vad", {"chunks": chunks})


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(UserError, match=r"node 'node' \(vad\) needs .*'onnxruntime'.*pip install 'omnigraph\[vad\]'"):
        run_node("vad", {"audio": Waveform(torch.zeros(1600), 16000)})


def test_a_model_path_that_is_not_there(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        run_node("vad", {"audio": Waveform(torch.zeros(1600), 16000)}, {"model": str(tmp_path / "none.onnx")})
