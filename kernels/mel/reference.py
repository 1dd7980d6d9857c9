"""The log-mel spec in plain batched torch (also the GPU path: a handful of large ops).

Whisper-style features as the Hugging Face WhisperFeatureExtractor computes them: STFT with the given window,
centre reflect padding and the last frame dropped; power; mel filterbank; log10 clamped at 1e-10; a floor of
(max - 8) over each padded example; (x + 4) / 4.

Shapes: B clips, N samples, n_fft window length, T = N // hop frames, F = n_fft // 2 + 1 bins, M mel bins.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def log_mel(wav: torch.Tensor, window: torch.Tensor, filters: torch.Tensor, hop: int,
            floor_frames: torch.Tensor | None = None) -> torch.Tensor:
    """wav [B, N], window [n_fft], filters [F, M] -> [B, M, T]; floor_frames [B]: see `floor`."""
    n_fft = window.shape[0]
    x = F.pad(wav[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]  # [B, N + n_fft]
    frames = x.unfold(-1, n_fft, hop)[:, :-1] * window                       # [B, T, n_fft]; last frame dropped
    spec = torch.view_as_real(torch.fft.rfft(frames, dim=-1))                 # [B, T, F, 2]
    power = spec.square_().sum(-1)                                            # [B, T, F]
    log = (power @ filters).clamp_min_(1e-10).log10_()                        # [B, T, M]
    return finish(log, floor_frames)


def finish(log: torch.Tensor, floor_frames: torch.Tensor | None = None) -> torch.Tensor:
    """[B, T, M] log10 mel -> [B, M, T] features: floor at each example's max - 8, then (x + 4) / 4."""
    log = floor(log.transpose(1, 2), floor_frames)
    return log.add_(4.0).div_(4.0)


def floor(log: torch.Tensor, floor_frames: torch.Tensor | None = None) -> torch.Tensor:
    """[B, M, T] log10 mel floored at each example's max - 8, the max taken over its first floor_frames[b]
    frames (default: all T; fewer when an example shares a longer batch than its own padded length)."""
    if floor_frames is None:
        top = log.amax(dim=(1, 2), keepdim=True)
    else:
        outside = torch.arange(log.shape[2], device=log.device) >= floor_frames.to(log.device)[:, None]  # [B, T]
        top = log.masked_fill(outside[:, None, :], float("-inf")).amax(dim=(1, 2), keepdim=True)
    return torch.maximum(log, top - 8.0)
