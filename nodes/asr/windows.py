"""Speech clips packed into windows of at most `seconds` (Whisper reads 30 s at a time), with a short pause
between clips, and times in a window mapped back to the recording."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ..common.speech_payloads import SpeechClip

GAP = 0.3  # seconds of silence put between two clips of one window


@dataclass
class Window:
    """Clips laid end to end: `audio` [N] at `rate`; `places` (offset in the window, start in the recording,
    seconds) per clip."""

    rate: int
    pieces: list[np.ndarray] = field(default_factory=list)
    places: list[tuple[float, float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def room_for(self, clip: SpeechClip, limit: float) -> bool:
        return not self.places or self.seconds + GAP + clip.seconds <= limit

    def add(self, clip: SpeechClip) -> None:
        if self.places:
            self.pieces.append(np.zeros(round(GAP * self.rate), np.float32))
            self.seconds += GAP
        self.pieces.append(clip.samples.detach().cpu().float().numpy())
        self.places.append((self.seconds, clip.start, clip.seconds))
        self.seconds += clip.seconds

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)

    def clip_at(self, t: float) -> int:
        """Index of the clip a time in this window belongs to (a time in a gap: the clip before it)."""
        return next((i for i in range(len(self.places) - 1, -1, -1) if self.places[i][0] <= t), 0)

    def to_recording(self, t: float) -> float:
        """A time in this window -> the same moment in the recording (a time in a gap goes to its clip's end)."""
        offset, start, seconds = self.places[self.clip_at(t)]
        return start + min(max(t - offset, 0.0), seconds)


def windows(clips: Iterable[SpeechClip], limit: float) -> Iterator[Window]:
    """Consecutive clips grouped into windows of at most `limit` seconds (a longer clip is a window alone)."""
    current: Window | None = None
    for clip in clips:
        if current is not None and not current.room_for(clip, limit):
            yield current
            current = None
        if current is None:
            current = Window(clip.sample_rate)
        current.add(clip)
    if current is not None:
        yield current
