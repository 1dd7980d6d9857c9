"""Whisper-style log-mel spectrogram. `log_mel` picks the fast path for the device; `reference.log_mel` is the spec."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def log_mel(wav: torch.Tensor, window: torch.Tensor, filters: torch.Tensor, hop: int,
            floor_frames: torch.Tensor | None = None) -> torch.Tensor:
    """[B, N] zero-padded waveforms -> [B, M, N // hop] Whisper log-mel features (see reference.log_mel).

    floor_frames [B]: each example's own frames, the ones its max - 8 floor is taken over (default: all of them);
    the frames after them are no part of the example (the CPU path does not compute them)."""
    if wav.device.type == "cpu":
        from .cpu import log_mel as fast
    else:
        from .reference import log_mel as fast
    return fast(wav, window, filters, hop, floor_frames)
