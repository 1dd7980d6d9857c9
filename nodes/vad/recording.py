"""One recording as it arrives, at 16 kHz: whole frames for the model, and the samples of spans still to cut."""
from __future__ import annotations

import numpy as np

from ...runtime.errors import UserError
from .silero import FRAME, SAMPLE_RATE


class Recording:
    """Add audio at any one sample rate (resampled with soxr, streaming); take whole frames; cut spans."""

    def __init__(self, sample_rate: int, what: str):
        import soxr

        self.rate, self._what = sample_rate, what
        self._resample = (None if sample_rate == SAMPLE_RATE else
                          soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ"))
        self.total = 0  # 16 kHz samples received
        self._held = np.zeros(0, np.float32)  # samples from `_held_from` on
        self._held_from = 0
        self._framed = 0  # samples given out as frames

    def add(self, samples: np.ndarray, sample_rate: int, last: bool = False) -> np.ndarray:
        """Append audio; returns the whole frames now complete, [F, 512] (with `last`, the final partial frame
        too, padded with zeros)."""
        if sample_rate != self.rate:
            raise UserError(f"{self._what} changes sample rate from {self.rate} Hz to {sample_rate} Hz")
        samples = np.asarray(samples, np.float32).reshape(-1)
        if self._resample is not None:
            samples = self._resample.resample_chunk(samples, last=last)
        self._held = np.concatenate([self._held, samples])
        self.total += len(samples)
        end = self.total if last else self._framed + (self.total - self._framed) // FRAME * FRAME
        frames = self._held[self._framed - self._held_from:end - self._held_from]
        if len(frames) % FRAME:
            frames = np.pad(frames, (0, FRAME - len(frames) % FRAME))
        self._framed = end
        return frames.reshape(-1, FRAME)

    def cut(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of the recording (still held)."""
        return self._held[start - self._held_from:end - self._held_from].copy()

    def forget_before(self, sample: int) -> None:
        """Samples before `sample` will not be cut again."""
        drop = min(max(sample - self._held_from, 0), len(self._held))
        self._held, self._held_from = self._held[drop:], self._held_from + drop
