"""Pieces of the Qwen-VL vision towers: derived sizes, patch coordinates in merge-block order, their 2D rotary tables and its
float32 application, and the M x M patch merger.

Shapes: N patches (all items packed), D hidden size, Dh head dim, M spatial merge size, U = M^2 patches per
merge block, K = N / U merged tokens, Do output size, (t, h, w) an item's patch grid.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rope, inv_freq, mrope_cos_sin, sectioned_axis_map


class TowerSizes:
    """Derived sizes of a vision tower's args dataclass (with hidden_size, num_heads, in_channels, patch_size,
    temporal_patch_size and spatial_merge_size)."""

    hidden_size: int
    num_heads: int
    in_channels: int
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch_dim(self) -> int:
        return self.in_channels * self.temporal_patch_size * self.patch_size ** 2

    @property
    def merged_dim(self) -> int:
        return self.hidden_size * self.spatial_merge_size ** 2

    def size_problems(self) -> list[str]:
        """What makes the sizes unusable (the 2D rotary needs a head dim that is a multiple of 4)."""
        if self.hidden_size % self.num_heads or self.head_dim % 4:
            return [f"hidden_size {self.hidden_size} / num_heads {self.num_heads} must be a multiple of 4"]
        return []


def patch_coordinates(grids: Sequence[tuple[int, int, int]], merge: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row [N], col [N]) patch coordinates in packed merge-block order, (h/M, w/M, M, M) repeated over t."""
    rows, cols = [], []
    for t, h, w in grids:
        r = torch.arange(h).view(h // merge, 1, merge, 1).expand(-1, w // merge, -1, merge)
        c = torch.arange(w).view(1, w // merge, 1, merge).expand(h // merge, -1, merge, -1)
        rows.append(r.reshape(-1).repeat(t))
        cols.append(c.reshape(-1).repeat(t))
    return torch.cat(rows), torch.cat(cols)


def rotary_cos_sin(rows: torch.Tensor, cols: torch.Tensor, head_dim: int, theta: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """2D rotary cos, sin [N, Dh] float32: angles concat(row*f, col*f) with Dh/4 frequencies f, duplicated;
    the common multi-axis rope with rows and columns as two axes of Dh/4 frequencies each."""
    freqs = inv_freq(head_dim // 2, theta)  # [Dh/4]
    axes = sectioned_axis_map([freqs.shape[0], freqs.shape[0]])
    return mrope_cos_sin(torch.stack([rows, cols]), freqs.repeat(2), axes)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half rotary (rope.apply_rope) in float32. x: [N, H, Dh]; cos/sin: [N, 1, Dh]."""
    return apply_rope(x.float(), cos, sin).to(x.dtype)


class PatchMerger(nn.Module):
    """U consecutive patches -> one token: `norm` (per patch, or over the concatenation when `post_shuffle`),
    Linear, exact GELU, Linear. [N, D] -> [K, Do]."""

    def __init__(self, norm: nn.Module, merged_dim: int, out_dim: int, post_shuffle: bool = False):
        super().__init__()
        self.post_shuffle, self.merged_dim = post_shuffle, merged_dim
        self.norm = norm
        self.fc1 = nn.Linear(merged_dim, merged_dim)
        self.fc2 = nn.Linear(merged_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x.view(-1, self.merged_dim)) if self.post_shuffle else self.norm(x).view(-1, self.merged_dim)
        return self.fc2(F.gelu(self.fc1(x)))
