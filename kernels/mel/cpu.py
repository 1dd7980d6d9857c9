"""CPU fast path of the log-mel: the same math in cache-sized blocks of frames, with a banded mel matmul.

Whole-batch intermediates (windowed frames, complex spectrum, power) are tens of MB for 30 s clips; a block of
a few hundred frames keeps them in cache and spares fresh allocations. Each mel filter is non-zero on a few
neighbouring bins only, so groups of filters multiply just the bins their group covers (about 4x fewer flops
than the dense [F, M] matmul). About 2-3x faster than the batched reference on CPU; results equal it to float32
rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .reference import finish

BLOCK = 1024  # frames per block: 1024 * n_fft(400) * 4 bytes = 1.6 MB of windowed frames
GROUP = 32   # mel filters per banded matmul


def filter_bands(filters: torch.Tensor, group: int = GROUP) -> list[tuple[int, int, int, int, torch.Tensor]]:
    """(first mel, end mel, first bin, end bin, filters[bins, mels]) per group of `group` filters."""
    nonzero = filters != 0                                                # [F, M]
    bands = []
    for m0 in range(0, filters.shape[1], group):
        m1 = min(filters.shape[1], m0 + group)
        bins = nonzero[:, m0:m1].any(dim=1).nonzero().flatten()
        f0, f1 = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 0)
        bands.append((m0, m1, f0, f1, filters[f0:f1, m0:m1].contiguous()))
    return bands


def log_mel(wav: torch.Tensor, window: torch.Tensor, filters: torch.Tensor, hop: int) -> torch.Tensor:
    """wav [B, N], window [n_fft], filters [F, M] -> [B, M, T] (see reference.log_mel)."""
    n_fft = window.shape[0]
    B, N = wav.shape
    T = N // hop
    bands = filter_bands(filters)
    x = F.pad(wav[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]  # [B, N + n_fft]
    frames = x.unfold(-1, n_fft, hop)                                          # [B, T + 1, n_fft] (a view)
    out = torch.empty(B, T, filters.shape[1], dtype=wav.dtype)                 # [B, T, M]
    for b in range(B):
        for t0 in range(0, T, BLOCK):
            mel = out[b, t0:t0 + BLOCK]                                                     # [t, M]
            spec = torch.view_as_real(torch.fft.rfft(frames[b, t0:t0 + len(mel)] * window, dim=-1))  # [t, F, 2]
            power = torch.addcmul(spec[..., 0].square(), spec[..., 1], spec[..., 1])       # [t, F]
            for m0, m1, f0, f1, band in bands:
                if f1 > f0:
                    torch.mm(power[:, f0:f1], band, out=mel[:, m0:m1])
                else:
                    mel[:, m0:m1] = 0.0
    return finish(out.clamp_min_(1e-10).log10_())
