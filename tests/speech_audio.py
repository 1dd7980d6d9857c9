"""Speech for the speech-node tests (spoken by one Piper node loaded once per session), and a word error rate.

Piper's speech varies from run to run (noise drawn inside its ONNX graph, unseeded); with both noise scales at 0
it is the same every time, so the tests speak that way."""
from __future__ import annotations

import functools
import re

import numpy as np
import torch

from omnigraph.runtime.node import Node
from omnigraph.runtime.payloads import AudioChunk, Text, Waveform
from omnigraph.runtime.registry import default_registry


STEADY_VOICE = {"noise_scale": 0.0, "noise_w_scale": 0.0}


@functools.lru_cache(maxsize=None)
def loaded(kind: str, config: tuple[tuple[str, object], ...] = ()) -> Node:
    """A node of `kind` with these config fields, loaded on the CPU (shared by the tests of a session)."""
    cls = default_registry().get(kind)
    node = cls(cls.Config(**dict(config)))
    node.load("cpu")
    return node


@functools.lru_cache(maxsize=None)
def spoken(text: str) -> Waveform:
    """`text` spoken by the default Piper voice (22.05 kHz), one sentence after another."""
    piper = loaded("piper_tts", tuple(STEADY_VOICE.items()))
    return AudioChunk.join([chunk for _, chunk in piper.stream(text=Text(text))])


def with_silence(speech: Waveform, before: float, after: float) -> Waveform:
    """`speech` with `before` and `after` seconds of digital silence around it."""
    rate = speech.sample_rate
    pad = [torch.zeros(round(before * rate)), speech.samples, torch.zeros(round(after * rate))]
    return Waveform(torch.cat(pad), rate)


def audible_span(audio: Waveform, level: float = 0.02) -> tuple[float, float]:
    """Seconds from the first to the last sample louder than `level` (of a peak-normalised voice)."""
    loud = np.flatnonzero(np.abs(audio.samples.numpy()) > level)
    return loud[0] / audio.sample_rate, (loud[-1] + 1) / audio.sample_rate


def words(text: str) -> str:
    """Lower case words without punctuation (hyphens split words), for comparing transcripts."""
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(words(reference), words(hypothesis))
