"""A file's audio decoded and cut into windows, or the reason it cannot be captioned: what the model stages get,
from the decode step (a thread locally, a CPU task on Ray Data)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .audio import AudioError, decode_audio
from .inputs import Item
from .windows import Window, cut_windows

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Decoded:
    item: Item
    samples: np.ndarray | None  # [N] float32 at 16 kHz; None when `error`
    windows: tuple[Window, ...]
    decode_s: float
    error: str | None = None

    @property
    def audio_seconds(self) -> float | None:
        return None if self.samples is None else len(self.samples) / SAMPLE_RATE


def decode_item(item: Item, window_seconds: float) -> Decoded:
    t0 = time.perf_counter()
    try:
        samples = decode_audio(item.path)
    except AudioError as exc:
        return Decoded(item, None, (), time.perf_counter() - t0, str(exc))
    windows = tuple(cut_windows(samples, SAMPLE_RATE, window_seconds))
    return Decoded(item, samples, windows, time.perf_counter() - t0)
