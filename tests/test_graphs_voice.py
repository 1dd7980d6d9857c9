"""The speech graphs: speak (Piper) then transcribe (VAD + Whisper) gives back the text; streaming; silence;
a missing extra from the command line."""
from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest
import soundfile
import torch

from omnigraph.cli import main
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.payloads import AudioChunk, Text
from omnigraph.runtime.validate import load_graph
from speech_audio import STEADY_VOICE, spoken, word_error_rate

AUDIO_PAD = 151675  # the Qwen3-Omni audio placeholder token

SENTENCES = [
    "The train leaves the station every morning.",
    "Please put the milk back in the fridge.",
    "My sister bought a new bicycle last week.",
    "The garden looks beautiful in the spring.",
    "We should finish the report before lunch.",
    "He forgot his umbrella at the office.",
    "The museum is closed on Mondays.",
    "Could you open the window a little?",
    "The children are reading books in the library.",
    "It started to rain just after dinner.",
    "She plays the piano every evening.",
    "The coffee in this cafe is very good.",
    "Turn left at the next corner.",
    "Our neighbours have a friendly old dog.",
    "The meeting was moved to the afternoon.",
    "I would like a glass of water, please.",
    "The river runs through the middle of the city.",
    "They painted the kitchen a bright yellow.",
    "The shop sells fresh bread and cheese.",
    "Remember to lock the door when you leave.",
]
STEADY = {("piper", field): value for field, value in STEADY_VOICE.items()}


@pytest.fixture(scope="module")
def speak() -> Iterator[LocalExecutor]:
    with LocalExecutor(load_graph("speak", overrides=STEADY), device="cpu") as executor:
        yield executor


@pytest.fixture(scope="module")
def transcribe() -> Iterator[LocalExecutor]:
    with LocalExecutor(load_graph("transcribe"), device="cpu") as executor:
        yield executor


def write_wav(path: Path, chunks: list[AudioChunk]) -> Path:
    audio = AudioChunk.join(chunks)
    soundfile.write(path, audio.samples.numpy(), audio.sample_rate)
    return path


def test_twenty_sentences_spoken_then_transcribed(speak, transcribe, tmp_path: Path) -> None:
    text = " ".join(SENTENCES)
    chunks = speak.run({"text": text}).outputs["audio"]
    assert len(chunks) == len(SENTENCES) and {c.sample_rate for c in chunks} == {22050}
    result = transcribe.run({"audio": str(write_wav(tmp_path / "speech.wav", chunks))})
    heard = result.outputs["text"].text
    wer = word_error_rate(text, heard)
    assert wer <= 0.1, (wer, heard)
    segments = result.outputs["segments"]
    seconds = sum(c.samples.shape[0] for c in chunks) / 22050
    assert segments and all(0 <= a.start < a.end <= b.start < b.end <= seconds + 0.01
                            for a, b in zip(segments, segments[1:]))


def test_first_audio_leaves_before_the_rest_of_the_text_exists(speak) -> None:
    first_audio = threading.Event()

    def text() -> Iterator[Text]:
        yield Text("This sentence is spoken first. ")
        if not first_audio.wait(120):  # bounded: a node that waits for the whole text fails the run here
            raise AssertionError("no audio before the rest of the text")
        yield Text("This one arrives later.")

    run = speak.start({"text": text()})
    for event in run.events():
        if event.name == "audio":
            first_audio.set()
    assert [c.index for c in run.result(timeout=120).outputs["audio"]] == [0, 1]


def test_concurrent_runs_get_what_they_get_alone(speak, transcribe, tmp_path: Path) -> None:
    files = [write_wav(tmp_path / f"{i}.wav", speak.run({"text": text}).outputs["audio"])
             for i, text in enumerate(["Open the blue door.", "The soup is too hot to eat."])]
    alone = [transcribe.run({"audio": str(f)}).outputs for f in files]
    runs = [transcribe.start({"audio": str(f)}) for f in files]  # both share the loaded vad and asr nodes
    assert [run.result(timeout=120).outputs for run in runs] == alone


def test_silence_gives_an_empty_transcript_and_says_so(transcribe, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    soundfile.write(tmp_path / "silence.wav", torch.zeros(16000 * 2).numpy(), 16000)
    with caplog.at_level(logging.WARNING):
        result = transcribe.run({"audio": str(tmp_path / "silence.wav")})
    assert result.outputs == {"text": Text(""), "segments": []} and not result.missing
    assert "no speech was recognised; the transcript is empty" in caplog.text


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sentence = "The bus stops outside the school."
    set_steady = [arg for field, value in STEADY_VOICE.items() for arg in ("--set", f"piper.{field}={value}")]
    assert main(["run", "speak", "--input", f"text={sentence}", "--out", str(tmp_path / "s"), *set_steady]) == 0
    assert main(["run", "transcribe", "--input", f"audio={tmp_path / 's' / 'audio.wav'}",
                 "--out", str(tmp_path / "t")]) == 0
    assert word_error_rate(sentence, (tmp_path / "t" / "text.txt").read_text()) <= 0.2  # one word of six
    assert json.loads((tmp_path / "t" / "segments.json").read_text())[0]["text"]
    capsys.readouterr()


def test_omni_asr_gives_the_thinker_the_transcript_instead_of_the_audio(tmp_path: Path) -> None:
    from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
    from omnigraph.nodes.qwen.tokenizer import QwenTokenizer

    sentence = "How far away is the train station?"
    speech = spoken(sentence)
    soundfile.write(tmp_path / "question.wav", speech.samples.numpy(), speech.sample_rate)
    assert main(["run", "omni_asr", "--input", f"audio={tmp_path / 'question.wav'}", "--max-new-tokens", "2",
                 "--max-frames", "2", "--out", str(tmp_path / "o")]) == 0
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    heard = result["outputs"]["transcript"]
    assert word_error_rate(sentence, heard) <= 0.2, heard
    ids = result["outputs"]["prompt_token_ids"]
    said = QwenTokenizer.from_dir(default_checkpoint()).encode(heard)
    assert any(ids[i:i + len(said)] == said for i in range(len(ids)))  # the transcript is the user's text
    assert AUDIO_PAD not in ids  # and no audio reaches the Thinker


def test_cli_names_the_extra_to_install(tmp_path: Path, capsys: pytest.CaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    soundfile.write(tmp_path / "a.wav", torch.zeros(1600).numpy(), 16000)
    code = main(["run", "transcribe", "--input", f"audio={tmp_path / 'a.wav'}", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'omnigraph[asr]'" in err and "Traceback" not in err


def test_nodes_lists_the_speech_kinds(capsys: pytest.CaptureFixture) -> None:
    assert main(["nodes", "asr"]) == 0
    out = capsys.readouterr().out
    assert "speech: SpeechClip*?" in out and "segments: SpeechSegment*" in out and "model_dir" in out
