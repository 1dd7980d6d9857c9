"""Speech segments from per-frame speech probabilities, decided as the frames arrive (Silero's own rule).

A segment opens at the first frame at or above `threshold` and closes once the probability has stayed below
`threshold - 0.15` for `min_silence` seconds; segments shorter than `min_speech` are dropped, and each kept one
is widened by `pad` seconds on both sides (never over its neighbour, nor past the audio seen).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmenterSettings:
    threshold: float
    min_speech: float  # seconds
    min_silence: float  # seconds
    pad: float  # seconds


class Segmenter:
    """Feed it probabilities frame by frame (`push`), then `finish`; both return closed (start, end) sample
    spans, padded."""

    def __init__(self, settings: SegmenterSettings, sample_rate: int, frame: int):
        self.frame = frame
        self._threshold = settings.threshold
        self._low = max(settings.threshold - 0.15, 0.01)
        self._min_speech = round(settings.min_speech * sample_rate)
        self._min_silence = round(settings.min_silence * sample_rate)
        self._pad = round(settings.pad * sample_rate)
        self._frames = 0  # frames seen
        self._start: int | None = None  # sample where the open segment started
        self._silence_from: int | None = None  # sample where the open segment's current silence started
        self._last_end = 0  # padded end of the last segment given out

    @property
    def open_start(self) -> int | None:
        """Sample where the segment still open started (None when none is open)."""
        return self._start

    def push(self, probs: np.ndarray) -> list[tuple[int, int]]:
        closed = []
        for prob in probs:
            at = self._frames * self.frame
            self._frames += 1
            if prob >= self._threshold:
                self._silence_from = None
                if self._start is None:
                    self._start = at
                continue
            if self._start is None or prob >= self._low:
                continue
            if self._silence_from is None:
                self._silence_from = at
            if at + self.frame - self._silence_from >= self._min_silence:
                closed += self._close(self._silence_from, self._frames * self.frame)
        return closed

    def finish(self, total: int) -> list[tuple[int, int]]:
        """Close the open segment at the end of the audio (`total` samples)."""
        if self._start is None:
            return []
        end = self._silence_from if self._silence_from is not None else total
        return self._close(min(end, total), total)

    def _close(self, end: int, seen: int) -> list[tuple[int, int]]:
        start, self._start, self._silence_from = self._start, None, None
        if end - start < self._min_speech:
            return []
        span = (max(start - self._pad, self._last_end), min(end + self._pad, seen))
        self._last_end = span[1]
        return [span]
