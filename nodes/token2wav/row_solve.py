"""Several ODEs of token2wav solved as one: rows of different lengths right-padded to the longest, the DiT's
attention hiding each row's padding from its frames (dit.padding_mask), every other DiT step per frame, so each
row's mel is the one it gets alone; guided rows follow the conditional ones.

On the CPU the DiT is bound by its products' arithmetic, not by reading its weights: one ODE over rows of one
length gains a little (`small25`, one core, 4 rows of 120 frames: 1.03-1.29x one by one), while the padding
mask and padded frames cost more than that (4 rows of 80-128 frames: 0.80-0.99x), so there rows are solved
in one ODE per length (`together=False`); elsewhere all rows are one padded ODE.

Shapes: B rows, N mel frames (the longest), M mel bins, C conditioning width.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dit import DiT
from .sampler import solve

Row = tuple[torch.Tensor, torch.Tensor]  # noise [1, n, M] (any device), conditioning [2, n, C] (DiT.conditioning)


def solve_rows(dit: DiT, rows: list[Row], num_steps: int, together: bool) -> list[torch.Tensor]:
    """-> each row's log-mel [M, n]: one padded ODE (`together`), else one ODE per length."""
    if together:
        return solve_padded(dit, rows, num_steps)
    groups: dict[int, list[int]] = {}
    for i, (noise, _) in enumerate(rows):
        groups.setdefault(noise.shape[1], []).append(i)
    mels: list = [None] * len(rows)
    for members in groups.values():
        for i, mel in zip(members, solve_padded(dit, [rows[i] for i in members], num_steps)):
            mels[i] = mel
    return mels


def solve_padded(dit: DiT, rows: list[Row], num_steps: int) -> list[torch.Tensor]:
    """One ODE over the rows padded to the longest (rows of one length: unmasked) -> each row's log-mel [M, n]."""
    device = dit.freqs.device
    sizes = [noise.shape[1] for noise, _ in rows]
    N = max(sizes)
    noise = torch.cat([F.pad(x, (0, 0, 0, N - n)) for (x, _), n in zip(rows, sizes)]).to(device)  # [B, N, M]
    conditioning = torch.cat([F.pad(c[g:g + 1], (0, 0, 0, N - n)) for g in (0, 1)
                              for (_, c), n in zip(rows, sizes)])  # [2B, N, C]: conditional rows, then unguided
    lengths = None if len(set(sizes)) == 1 else torch.tensor(sizes, device=device)
    mel = solve(dit, noise, conditioning, num_steps, lengths=lengths)  # [B, M, N]
    return [mel[b, :, :n] for b, n in enumerate(sizes)]
