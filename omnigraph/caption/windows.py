"""Cutting a file's audio into windows of at most `max_seconds`, never dropping any of it.

A file of D seconds needs n = ceil(D / max_seconds) windows; each cut aims at an even share of what is left and
moves to the quietest 20 ms frame within `SLACK` seconds of that aim (never past `max_seconds`) when that frame
is silent (its RMS under a tenth of the file's, and under SILENT_RMS), so speech is not split mid-word where a
pause is near. Windows are half-open sample ranges that tile the whole file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.02
SLACK = 5.0  # seconds either side of the even cut searched for a silence
SILENT_RMS = 0.01  # ~ -40 dBFS: louder than this is not a pause, however quiet the rest of the file is


@dataclass(frozen=True)
class Window:
    """Samples [first, last) of the file's audio; `start`/`end` in seconds."""

    index: int
    first: int
    last: int
    rate: int

    @property
    def start(self) -> float:
        return self.first / self.rate

    @property
    def end(self) -> float:
        return self.last / self.rate


def cut_windows(samples: np.ndarray, rate: int, max_seconds: float) -> list[Window]:
    """Windows covering all of `samples` ([N] float32), each at most `max_seconds` long (none for N = 0)."""
    limit = max(1, int(max_seconds * rate))
    frame = max(1, int(FRAME_SECONDS * rate))
    rms = _frame_rms(samples, frame)
    quiet = min(SILENT_RMS, 0.1 * float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))) if len(samples) else 0
    cuts, first, total = [], 0, len(samples)
    while first < total:
        left = total - first
        if left <= limit:
            cuts.append((first, total))
            break
        aim = first + left // math.ceil(left / limit)
        last = _silence_near(rms, frame, aim, first, first + limit, int(SLACK * rate), quiet) or aim
        cuts.append((first, last))
        first = last
    return [Window(i, a, b, rate) for i, (a, b) in enumerate(cuts)]


def _frame_rms(samples: np.ndarray, frame: int) -> np.ndarray:
    whole = len(samples) // frame * frame
    frames = samples[:whole].reshape(-1, frame).astype(np.float64)
    return np.sqrt(np.mean(frames * frames, axis=1)) if len(frames) else np.zeros(0)


def _silence_near(rms: np.ndarray, frame: int, aim: int, first: int, most: int, slack: int,
                  quiet: float) -> int | None:
    """The middle sample of the quietest frame within `slack` of `aim` (inside (first, most]), if it is silent."""
    lo = max(first + frame, aim - slack) // frame
    hi = min(most, aim + slack) // frame  # frames [lo, hi) end by `most`
    if hi <= lo:
        return None
    best = lo + int(np.argmin(rms[lo:hi]))
    if rms[best] > quiet:
        return None
    return min(most, best * frame + frame // 2)
