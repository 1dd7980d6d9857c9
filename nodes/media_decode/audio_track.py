"""An audio track as it is decoded: each frame averaged over its channels, then resampled to 16 kHz with soxr.

The channel mean and soxr's "HQ" quality are what `librosa.load(path, sr=16000)` does; soxr streams, so only
the 16 kHz mono result is held in memory, however long or wide the track. A track whose sample rate, layout or
sample format changes mid-stream (chained Ogg, broadcast recordings switching between stereo and 5.1) is
resampled piece by piece.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000


class AudioTrack:
    """Collects decoded PyAV audio frames; `seconds` counts what was decoded so far at the track's own rates."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._piece = None  # (rate, layout, format) of the frames the current converters were made for
        self._convert = None  # PyAV resampler to planar float32 at the piece's own rate
        self._resample = None  # soxr stream to 16 kHz, None when the piece is already at 16 kHz
        self._chunks: list[np.ndarray] = []

    def add(self, frame) -> None:
        piece = (frame.sample_rate, frame.layout.name, frame.format.name)
        if piece != self._piece:
            self._finish_piece()
            self._start_piece(piece)
        for out in self._convert.resample(frame):
            self._keep(out)

    def samples(self) -> np.ndarray:
        """[N] float32 at 16 kHz (empty when nothing was decoded)."""
        self._finish_piece()
        if not self._chunks:
            return np.zeros(0, np.float32)
        return np.ascontiguousarray(np.concatenate(self._chunks), dtype=np.float32)

    def _start_piece(self, piece) -> None:
        import av
        import soxr

        rate = piece[0]
        self._piece = piece
        self._convert = av.AudioResampler(format="fltp", rate=rate)
        self._resample = (soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
                          if rate != SAMPLE_RATE else None)

    def _finish_piece(self) -> None:
        if self._convert is None:
            return
        for out in self._convert.resample(None):
            self._keep(out)
        if self._resample is not None:
            self._chunks.append(self._resample.resample_chunk(np.zeros(0, np.float32), last=True))
        self._piece = self._convert = self._resample = None

    def _keep(self, out) -> None:
        mono = out.to_ndarray().mean(axis=0).astype(np.float32, copy=False)  # [C, n] -> [n]: the channel mean
        self.seconds += len(mono) / out.sample_rate
        self._chunks.append(self._resample.resample_chunk(mono) if self._resample is not None else mono)
