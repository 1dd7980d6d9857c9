"""Silero VAD v5/v6 through onnxruntime: the speech probability of each 32 ms frame of 16 kHz audio.

The model is recurrent: each frame is given with the last 64 samples before it and the state the previous frame
left, so one `SileroStream` follows one recording.
"""
from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE_RATE = 16000
FRAME = 512  # samples per frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees again


class SileroStream:
    """Speech probabilities of consecutive frames of one recording (`session`: a loaded silero_vad.onnx)."""

    def __init__(self, session: Any):
        self._session = session
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)
        self._rate = np.array(SAMPLE_RATE, np.int64)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """frames: [F, 512] float32 -> [F] speech probabilities in [0, 1]."""
        out = np.empty(len(frames), np.float32)
        for i, frame in enumerate(frames):
            x = np.concatenate([self._context, frame[None, :]], axis=1)  # [1, 576]
            prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._rate})
            self._context = x[:, -CONTEXT:]
            out[i] = prob.reshape(-1)[0]
        return out
