"""An audio track as it is decoded: each frame averaged over its channels, then resampled to 16 kHz with soxr.

The channel mean and soxr's "HQ" quality are what `librosa.load(path, sr=16000)` does; soxr streams, so only
the 16 kHz mono result is held in memory, however long or wide the track.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000


class AudioTrack:
    """Collects decoded PyAV audio frames; `seconds` counts what was decoded so far at the track's own rate."""

    def __init__(self) -> None:
        self.rate = 0
        self.seconds = 0.0
        self._convert = None  # PyAV resampler to planar float32, created with the first frame's rate
        self._resample = None  # soxr stream, None when the track is already at 16 kHz
        self._chunks: list[np.ndarray] = []

    def add(self, frame) -> None:
        """Raises ValueError when the track changes its sample rate or channel layout mid-stream."""
        if self._convert is None:
            import av
            import soxr

            self.rate = frame.sample_rate
            self._convert = av.AudioResampler(format="fltp", rate=self.rate)
            if self.rate != SAMPLE_RATE:
                self._resample = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        for out in self._convert.resample(frame):
            self._keep(out.to_ndarray().mean(axis=0))  # [C, n] -> [n]: the mean of the channels

    def _keep(self, mono: np.ndarray, last: bool = False) -> None:
        self.seconds += len(mono) / self.rate
        mono = mono.astype(np.float32, copy=False)
        self._chunks.append(self._resample.resample_chunk(mono, last=last) if self._resample else mono)

    def samples(self) -> np.ndarray:
        """[N] float32 at 16 kHz (empty when nothing was decoded)."""
        if self._convert is not None:
            for out in self._convert.resample(None):
                self._keep(out.to_ndarray().mean(axis=0))
            if self._resample is not None:
                self._keep(np.zeros(0, np.float32), last=True)
        if not self._chunks:
            return np.zeros(0, np.float32)
        return np.ascontiguousarray(np.concatenate(self._chunks), dtype=np.float32)
