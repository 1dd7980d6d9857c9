"""Whisper's fixed sinusoidal position table (the audio encoders' positions; not in any checkpoint)."""
from __future__ import annotations

import math

import torch


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """[length, channels] table: sin of position * inv_freq in the first half, cos in the second."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv_freq = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float32))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)
