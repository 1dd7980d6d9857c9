"""Payloads of speech nodes (vad, asr): clips of speech cut from a longer recording, and timed transcript segments.

Times are seconds from the start of the recording the clips were cut from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...runtime.payloads import Payload, Waveform


@dataclass(frozen=True)
class SpeechClip(Waveform):
    """A span of speech: its samples ([N] float32, mono) and where it starts in the recording."""

    start: float = 0.0

    @property
    def end(self) -> float:
        return self.start + self.seconds

    def to_json(self) -> Any:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "sample_rate": self.sample_rate}


@dataclass(frozen=True)
class SpeechSegment(Payload):
    """A timed span of speech and, once transcribed, what was said in it (`text`, empty before)."""

    start: float
    end: float
    text: str = ""

    def to_json(self) -> Any:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text}

    @classmethod
    def join(cls, items: Sequence[SpeechSegment]) -> SpeechSegments:
        return SpeechSegments(tuple(items))


@dataclass(frozen=True)
class SpeechSegments(Payload):
    """Every segment of a recording, in time order."""

    segments: tuple[SpeechSegment, ...]

    def to_json(self) -> Any:
        return [segment.to_json() for segment in self.segments]
