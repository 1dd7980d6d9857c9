"""The flow-matching ODE of token2wav (reference qwen2.5-omni.md section 7.4): from noise at t = 0 to the mel
at t = 1 on a cosine-warped grid, with fixed-step RK4 (the 3/8 rule) and classifier-free guidance.

Shapes: B batch, N mel frames, M mel bins.
"""
from __future__ import annotations

import math

import torch

from .dit import DiT

NUM_STEPS = 10  # grid points (9 intervals, 36 DiT calls), as transformers' token2wav
GUIDANCE = 0.5
SWAY = -1.0


def time_grid(num_steps: int, sway: float = SWAY, device: torch.device | str = "cpu") -> torch.Tensor:
    """[num_steps] float32: linspace(0, 1) moved by sway * (cos(pi t / 2) - 1 + t)."""
    t = torch.linspace(0, 1, num_steps, device=device, dtype=torch.float32)
    return t + sway * (torch.cos(math.pi / 2 * t) - 1 + t)


def velocity(dit: DiT, x: torch.Tensor, t: torch.Tensor, conditioning: torch.Tensor, guidance: float,
             lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The guided velocity v_c + guidance (v_c - v_u): one DiT call on the conditional and unconditional rows."""
    B = x.shape[0]
    if guidance < 1e-5:
        return dit(x, t.expand(B), conditioning[:B], lengths)
    out = dit(torch.cat([x, x]), t.expand(2 * B), conditioning, None if lengths is None else lengths.repeat(2))
    cond, uncond = out.chunk(2)
    return cond + (cond - uncond) * guidance


def solve(dit: DiT, noise: torch.Tensor, conditioning: torch.Tensor, num_steps: int = NUM_STEPS,
          guidance: float = GUIDANCE, sway: float = SWAY, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """noise [B, N, M] (the state at t = 0), conditioning [2B, N, ...] (DiT.conditioning), lengths [B] (rows
    padded after their ends; None: none) -> log-mel [B, M, N]."""
    f = lambda t, y: velocity(dit, y, t, conditioning, guidance, lengths)  # noqa: E731
    grid = time_grid(num_steps, sway, noise.device)
    y = noise
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        k1 = f(t0, y)
        k2 = f(t0 + h / 3, y + h * k1 / 3)
        k3 = f(t0 + 2 * h / 3, y + h * (k2 - k1 / 3))
        k4 = f(t1, y + h * (k1 - k2 + k3))
        y = y + (k1 + 3 * (k2 + k3) + k4) * h / 8
    return y.transpose(1, 2)
