"""morse_synth: speaks a text stream as Morse code tones, one audio chunk per text piece (a weight-free demo)."""
from __future__ import annotations

from typing import Iterator

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import AudioChunk, Text
from ...runtime.ports import Input, Output

CODE = {
    "a": ".-", "b": "-...", "c": "-.-.", "d": "-..", "e": ".", "f": "..-.", "g": "--.", "h": "....", "i": "..",
    "j": ".---", "k": "-.-", "l": ".-..", "m": "--", "n": "-.", "o": "---", "p": ".--.", "q": "--.-", "r": ".-.",
    "s": "...", "t": "-", "u": "..-", "v": "...-", "w": ".--", "x": "-..-", "y": "-.--", "z": "--..",
    "0": "-----", "1": ".----", "2": "..---", "3": "...--", "4": "....-", "5": ".....", "6": "-....",
    "7": "--...", "8": "---..", "9": "----.", ".": ".-.-.-", ",": "--..--", "?": "..--..", "!": "-.-.--",
}


def morse_units(text: str) -> list[tuple[bool, int]]:
    """(tone on?, length in dot units) for `text`: dot 1, dash 3, gaps 1 / 3 (letters) / 7 (words)."""
    units: list[tuple[bool, int]] = []
    for char in text.lower():
        if char.isspace():
            units.append((False, 7))
            continue
        code = CODE.get(char)
        if code is None:
            continue
        for symbol in code:
            units += [(True, 1 if symbol == "." else 3), (False, 1)]
        units.append((False, 2))
    return units


class MorseSynth(Node):
    kind = "morse_synth"

    class Config(NodeConfig):
        wpm: float = Field(20.0, gt=0, le=100, description="Speed in words per minute (PARIS standard).")
        tone_hz: float = Field(600.0, gt=20, le=8000, description="Tone frequency.")
        sample_rate: int = Field(24000, ge=8000, le=192000, description="Output sample rate.")
        volume: float = Field(0.5, gt=0, le=1.0, description="Peak amplitude.")

    inputs = (Input("text", Text, stream=True, doc="Text pieces to key."),)
    outputs = (Output("audio", AudioChunk, stream=True, doc="One chunk per text piece."),)

    def setup(self, device: str, checkpoint: object) -> None:
        import torch  # noqa: F401 - pay the import before the first item, not on it

    def stream(self, text: Iterator[Text]) -> Iterator[tuple[str, AudioChunk]]:
        import torch

        cfg = self.config
        unit = round(cfg.sample_rate * 1.2 / cfg.wpm)  # samples per dot
        ramp = torch.linspace(0.0, 1.0, max(unit // 8, 1))  # soft edges: no clicks
        for index, piece in enumerate(text):
            spans = []
            for on, length in morse_units(piece.text):
                n = length * unit
                if not on:
                    spans.append(torch.zeros(n))
                    continue
                t = torch.arange(n, dtype=torch.float32) / cfg.sample_rate  # [n]
                tone = cfg.volume * torch.sin(2 * torch.pi * cfg.tone_hz * t)
                envelope = torch.ones(n)
                envelope[: ramp.numel()] = ramp
                envelope[n - ramp.numel():] = ramp.flip(0)
                spans.append(tone * envelope)
            samples = torch.cat(spans) if spans else torch.zeros(0)
            yield "audio", AudioChunk(samples.float(), cfg.sample_rate, index)
