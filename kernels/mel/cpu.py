"""CPU fast path of the log-mel: blocks of frames sized for the cache, and a banded mel matmul.

Batched intermediates (windowed frames, complex spectrum, power) are tens of MB for 30 s clips; a block of
frames of one clip keeps them in cache and avoids fresh allocations (page faults). The power |X|^2 is the
squared real and imaginary parts summed by the matmul itself (each filter row is repeated for both), and each
mel filter is non-zero on a few neighbouring bins only, so groups of filters multiply just the bins their group
covers (about 4x fewer flops than a dense matmul). Results equal reference.log_mel's to float32 rounding, on
each example's first floor_frames frames: the frames after them are not computed (padding costs nothing).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from .reference import floor

BLOCK = 1024  # frames per block: 1024 * n_fft(400) * 4 bytes = 1.6 MB of windowed frames
GROUP = 32    # mel filters per banded matmul


def filter_bands(filters: torch.Tensor, group: int = GROUP) -> list[tuple[int, int, int, int, torch.Tensor]]:
    """(first mel, end mel, first row, end row, filters[rows, mels]) per group of `group` filters."""
    nonzero = filters != 0                                                # [K, M]
    bands = []
    for m0 in range(0, filters.shape[1], group):
        m1 = min(filters.shape[1], m0 + group)
        rows = nonzero[:, m0:m1].any(dim=1).nonzero().flatten()
        k0, k1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        bands.append((m0, m1, k0, k1, filters[k0:k1, m0:m1].contiguous()))
    return bands


def log_mel(wav: torch.Tensor, window: torch.Tensor, filters: torch.Tensor, hop: int,
            floor_frames: torch.Tensor | None = None) -> torch.Tensor:
    """wav [B, N], window [n_fft], filters [F, M] -> [B, M, T] (see reference.log_mel)."""
    n_fft = window.shape[0]
    B, N = wav.shape
    T = N // hop
    bands = filter_bands(filters.repeat_interleave(2, dim=0))                  # rows 2f, 2f+1: real, imaginary
    x = F.pad(wav[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]  # [B, N + n_fft]
    frames = x.unfold(-1, n_fft, hop)                                          # [B, T + 1, n_fft] (a view)
    mel = torch.empty(B, filters.shape[1], T, dtype=wav.dtype)                 # [B, M, T]
    own = [T] * B if floor_frames is None else [min(T, int(n)) for n in floor_frames]  # frames computed per row
    for b in range(B):
        mel[b, :, own[b]:] = 0.0  # frames past an example's own are no part of it: left at the floor

    inference = torch.is_inference_mode_enabled()  # worker threads do not inherit the caller's mode

    def fill(b: int, t0: int) -> None:
        with torch.inference_mode(inference):
            fill_block(b, t0)

    def fill_block(b: int, t0: int) -> None:
        block = mel[b, :, t0:min(t0 + BLOCK, own[b])]                                  # [M, t]
        spec = torch.fft.rfft(frames[b, t0:t0 + block.shape[1]] * window, dim=-1)      # [t, F] complex
        parts = torch.view_as_real(spec).flatten(-2).square_()                         # [t, 2F]: re^2, im^2
        for m0, m1, k0, k1, band in bands:
            if k1 > k0:
                torch.mm(band.T, parts[:, k0:k1].T, out=block[m0:m1])
            else:
                block[m0:m1] = 0.0

    blocks = [(b, t0) for b in range(B) for t0 in range(0, own[b], BLOCK)]
    workers = min(torch.get_num_threads(), len(blocks))
    if workers > 1:  # blocks are independent and torch releases the GIL: one block per core at a time
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda bt: fill(*bt), blocks))
    else:
        for b, t0 in blocks:
            fill(b, t0)
    log = mel.clamp_min_(1e-10).log10_()
    return floor(log, floor_frames).add_(4.0).div_(4.0)                          # max - 8 per padded example
