"""split_text, join_text, regex_replace, morse_synth: each run through `run_node`."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.payloads import AudioChunk, Text
from omnigraph.testing import run_node


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40), unit=st.sampled_from(["words", "chars", "lines"]))
def test_split_then_join_gives_back_the_text(text: str, unit: str) -> None:
    pieces = run_node("split_text", {"text": Text(text)}, {"unit": unit})["pieces"]
    assert "".join(p.text for p in pieces) == text
    assert run_node("join_text", {"pieces": pieces})["text"] == Text(text)


def test_split_units() -> None:
    assert [p.text for p in run_node("split_text", {"text": Text("a bc\nd")})["pieces"]] == ["a ", "bc\n", "d"]
    lines = run_node("split_text", {"text": Text("a bc\nd")}, {"unit": "lines"})["pieces"]
    assert [p.text for p in lines] == ["a bc\n", "d"]


def test_join_separator() -> None:
    assert run_node("join_text", {"pieces": [Text("a"), Text("b")]}, {"separator": "-"})["text"] == Text("a-b")


def test_regex_replace_per_piece() -> None:
    out = run_node("regex_replace", {"text": [Text("Secret plan"), Text("no secrets")]},
                   {"pattern": r"secret", "replacement": "***", "ignore_case": True})["text"]
    assert [p.text for p in out] == ["*** plan", "no ***s"]


def test_regex_replace_rejects_a_bad_pattern() -> None:
    with pytest.raises(GraphValidationError, match="not a valid regular expression"):
        run_node("regex_replace", {"text": []}, {"pattern": "("})


def test_morse_timing_and_tone() -> None:
    rate, wpm = 8000, 20
    chunks = run_node("morse_synth", {"text": [Text("e"), Text("t ")]},
                      {"sample_rate": rate, "wpm": wpm, "tone_hz": 500})["audio"]
    unit = round(rate * 1.2 / wpm)
    assert [c.index for c in chunks] == [0, 1]
    assert all(isinstance(c, AudioChunk) and c.sample_rate == rate for c in chunks)
    # 'e' = dot, gap, letter gap: 1 + 1 + 2 units; 't ' = dash, gap, letter gap, word gap: 3 + 1 + 2 + 7
    assert [c.samples.numel() for c in chunks] == [4 * unit, 13 * unit]
    tone = chunks[0].samples[:unit]
    assert tone.abs().max() > 0.4 and chunks[0].samples[unit:].abs().max() == 0
    spectrum = torch.fft.rfft(tone).abs()
    assert abs(int(spectrum.argmax()) * rate / unit - 500) < rate / unit
