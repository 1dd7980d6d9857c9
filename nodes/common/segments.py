"""Attention within variable-length segments of a packed sequence (audio windows, image or video-frame patch
grids): every segment attends to itself only. Segments are padded into batches of similar length, so the
block-diagonal attention costs about the sum of the segments' own squares; everything else stays packed.

Shapes: N packed rows, H heads, K head dim, B segments of a group, L the group's longest segment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

MAX_WASTE = 0.25  # a group's padded attention (B x L^2) is at most (1 + MAX_WASTE) x its segments' sum of l^2


@dataclass(frozen=True)
class SegmentGroup:
    """Segments padded into one batch. rows [n]: their packed rows (None: all N rows, in order); seg/slot [n]:
    each row's segment and place in it; key_mask [B, 1, 1, L] (True = real row), None when none is shorter."""

    rows: torch.Tensor | None
    seg: torch.Tensor
    slot: torch.Tensor
    batch: int
    length: int
    key_mask: torch.Tensor | None

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """[N, ...] -> [B, L, ...] (zeros where a segment is shorter than L)."""
        x = x if self.rows is None else x[self.rows]
        if self.key_mask is None:
            return x.reshape(self.batch, self.length, *x.shape[1:])
        out = x.new_zeros(self.batch, self.length, *x.shape[1:])
        out[self.seg, self.slot] = x
        return out

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, ...] -> [n, ...] in the order of `rows`."""
        if self.key_mask is None:
            return x.reshape(-1, *x.shape[2:])
        return x[self.seg, self.slot]


def segment_groups(lengths: Sequence[int], device: torch.device | str,
                   max_waste: float = MAX_WASTE) -> list[SegmentGroup]:
    """Segments of these lengths (packed one after another) in groups of similar length."""
    starts = [0]
    for n in lengths[:-1]:
        starts.append(starts[-1] + n)
    groups = similar_size_groups([n * n for n in lengths], max_waste)
    out = []
    for members in groups:  # index tensors built on the CPU, then moved once (no small launches per segment)
        sizes = torch.tensor([lengths[i] for i in members])  # [B]
        rows = None
        if len(groups) > 1:
            rows = torch.cat([torch.arange(starts[i], starts[i] + lengths[i]) for i in members]).to(device)
        seg = torch.repeat_interleave(torch.arange(len(members)), sizes)  # [n]
        slot = torch.arange(seg.shape[0]) - (torch.cumsum(sizes, 0) - sizes)[seg]
        length = max(lengths[i] for i in members)
        mask = None
        if any(lengths[i] != length for i in members):
            mask = (torch.arange(length)[None, :] < sizes[:, None])[:, None, None, :].to(device)
        out.append(SegmentGroup(rows, seg.to(device), slot.to(device), len(members), length, mask))
    return out


def segment_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      groups: Sequence[SegmentGroup]) -> torch.Tensor:
    """q, k, v [N, H, K] packed -> [N, H, K]: SDPA (no causal mask, scale K^-0.5) within each segment."""
    def attend(g: SegmentGroup) -> torch.Tensor:
        a = F.scaled_dot_product_attention(*(g.pad(t).transpose(1, 2) for t in (q, k, v)), attn_mask=g.key_mask)
        return g.unpad(a.transpose(1, 2))  # [n, H, K]

    if len(groups) == 1 and groups[0].rows is None:
        return attend(groups[0])
    out = torch.empty_like(q)
    for g in groups:
        out[g.rows] = attend(g)
    return out


def similar_size_groups(sizes: Sequence[int], max_waste: float) -> list[list[int]]:
    """Indexes into `sizes`, largest first, cut into groups whose padded size (items x largest) stays within
    (1 + max_waste) x their real size; indexes in a group are in increasing order."""
    groups: list[list[int]] = []
    real = 0
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        if groups and (len(groups[-1]) + 1) * sizes[groups[-1][0]] <= (1 + max_waste) * (real + sizes[i]):
            groups[-1].append(i)
            real += sizes[i]
        else:
            groups.append([i])
            real = sizes[i]
    return [sorted(group) for group in groups]
