"""The Qwen2.5-VL vision tower of Qwen2.5-Omni: patch embedding (no absolute positions), 2D rotary, pre-RMSNorm
blocks with window attention (full attention per frame in `fullatt_block_indexes`), SwiGLU MLPs with biases,
and the 2x2 patch merger (RMSNorm, Linear, exact GELU, Linear).

Windows: each frame's merged grid is tiled into windows of `window_size / patch / merge` merge blocks a side
(partial ones at the right and bottom). The patches are reordered, one merge block at a time, so that every
window is contiguous; the rotary tables go with them, and the merged tokens are put back in order at the end.

Shapes: N patches (all items packed), D hidden size, H heads, Dh head dim, M spatial merge size, U = M^2
patches per merge block, K = N / U merged tokens, Do output size, (t, h, w) an item's patch grid.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.rmsnorm import RMSNorm
from ..common.rope import apply_rope, inv_freq, mrope_cos_sin, sectioned_axis_map
from ..common.segments import SegmentGroup, segment_attention, segment_groups

ACTIVATIONS = {"silu": F.silu, "gelu": F.gelu, "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}
NORM_EPS = 1e-6


@dataclass(frozen=True)
class VisionArgs:
    # Defaults are the released 7B values (the config class's hidden_size default, 3584, is not).
    depth: int = 32
    hidden_size: int = 1280
    num_heads: int = 16
    intermediate_size: int = 3420
    hidden_act: str = "silu"
    in_channels: int = 3
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    window_size: int = 112
    fullatt_block_indexes: tuple[int, ...] = (7, 15, 23, 31)
    out_hidden_size: int = 3584
    rope_theta: float = 10000.0

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> VisionArgs:
        """From config.json (thinker_config.vision_config), a thinker config or the vision config."""
        if "thinker_config" in config:
            config = config["thinker_config"]
        if "vision_config" in config:
            config = config["vision_config"] or {}
        values = {f.name: config[f.name] for f in fields(cls) if f.name in config}
        if "fullatt_block_indexes" in values:
            values["fullatt_block_indexes"] = tuple(values["fullatt_block_indexes"])
        rope = config.get("rope_parameters") or {}
        values["rope_theta"] = float(rope.get("rope_theta", cls.rope_theta))
        args = cls(**values)
        args.check()
        return args

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch_dim(self) -> int:
        return self.in_channels * self.temporal_patch_size * self.patch_size ** 2

    @property
    def merged_dim(self) -> int:
        return self.hidden_size * self.spatial_merge_size ** 2

    @property
    def window_blocks(self) -> int:
        """A window's side in merge blocks."""
        return self.window_size // self.spatial_merge_size // self.patch_size

    def check(self) -> None:
        problems = []
        if self.hidden_size % self.num_heads or self.head_dim % 4:
            problems.append(f"hidden_size {self.hidden_size} / num_heads {self.num_heads} must be a multiple of 4")
        if any(not 0 <= i < self.depth for i in self.fullatt_block_indexes):
            problems.append(f"fullatt_block_indexes {list(self.fullatt_block_indexes)} must be < depth {self.depth}")
        if self.window_blocks < 1:
            problems.append(f"window_size {self.window_size} must be at least patch_size * spatial_merge_size "
                            f"({self.patch_size * self.spatial_merge_size})")
        if self.hidden_act not in ACTIVATIONS:
            problems.append(f"hidden_act '{self.hidden_act}' is not one of {sorted(ACTIVATIONS)}")
        if problems:
            raise ValueError("; ".join(problems))


def patch_coordinates(grids: Sequence[tuple[int, int, int]], merge: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row [N], col [N]) patch coordinates in packed merge-block order, (h/M, w/M, M, M) repeated over t."""
    rows, cols = [], []
    for t, h, w in grids:
        r = torch.arange(h).view(h // merge, 1, merge, 1).expand(-1, w // merge, -1, merge)
        c = torch.arange(w).view(1, w // merge, 1, merge).expand(h // merge, -1, merge, -1)
        rows.append(r.reshape(-1).repeat(t))
        cols.append(c.reshape(-1).repeat(t))
    return torch.cat(rows), torch.cat(cols)


def window_order(grids: Sequence[tuple[int, int, int]], merge: int, side: int) -> tuple[torch.Tensor, list[int]]:
    """Merge blocks reordered so each window is contiguous: frame by frame, windows in raster order, blocks in
    raster order inside a window. -> (packed merge-block index [K] in the new order, blocks per window)."""
    order, sizes, offset = [], [], 0
    for t, h, w in grids:
        bh, bw = h // merge, w // merge
        blocks = torch.arange(bh * bw).view(bh, bw)
        for frame in range(t):
            for r0 in range(0, bh, side):
                for c0 in range(0, bw, side):
                    window = blocks[r0:r0 + side, c0:c0 + side].reshape(-1)
                    order.append(window + offset + frame * bh * bw)
                    sizes.append(window.numel())
        offset += t * bh * bw
    return torch.cat(order), sizes


def rotary_cos_sin(rows: torch.Tensor, cols: torch.Tensor, head_dim: int, theta: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """2D rotary cos, sin [N, Dh] float32: angles concat(row*f, col*f) with Dh/4 frequencies f, duplicated."""
    freqs = inv_freq(head_dim // 2, theta)  # [Dh/4]
    axes = sectioned_axis_map([freqs.shape[0], freqs.shape[0]])
    return mrope_cos_sin(torch.stack([rows, cols]), freqs.repeat(2), axes)


class Attention(nn.Module):
    """Separate q, k, v projections (with biases), rotary in float32, attention within segments."""

    def __init__(self, args: VisionArgs):
        super().__init__()
        D = args.hidden_size
        self.num_heads, self.head_dim = args.num_heads, args.head_dim
        self.q, self.k, self.v, self.proj = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                segs: Sequence[SegmentGroup]) -> torch.Tensor:
        n = x.shape[0]
        q, k, v = (p(x).view(n, self.num_heads, self.head_dim) for p in (self.q, self.k, self.v))  # [N, H, Dh]
        q, k = (apply_rope(t.float(), cos, sin).to(t.dtype) for t in (q, k))
        return self.proj(segment_attention(q, k, v, segs).reshape(n, -1))


class Block(nn.Module):
    """x + attn(norm1(x)), then x + down(act(gate(y)) * up(y)) with y = norm2(x)."""

    def __init__(self, args: VisionArgs):
        super().__init__()
        D, I = args.hidden_size, args.intermediate_size
        self.norm1 = RMSNorm(D, NORM_EPS)
        self.attn = Attention(args)
        self.norm2 = RMSNorm(D, NORM_EPS)
        self.gate, self.up, self.down = nn.Linear(D, I), nn.Linear(D, I), nn.Linear(I, D)
        self.act = ACTIVATIONS[args.hidden_act]

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                segs: Sequence[SegmentGroup]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, segs)
        y = self.norm2(x)
        return x + self.down(self.act(self.gate(y)) * self.up(y))


class Merger(nn.Module):
    """U consecutive patches -> one token: RMSNorm per patch, Linear, exact GELU, Linear. [N, D] -> [K, Do]."""

    def __init__(self, args: VisionArgs):
        super().__init__()
        self.merged_dim = args.merged_dim
        self.norm = RMSNorm(args.hidden_size, NORM_EPS)
        self.fc1 = nn.Linear(args.merged_dim, args.merged_dim)
        self.fc2 = nn.Linear(args.merged_dim, args.out_hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x).view(-1, self.merged_dim))))


class VisionEncoder(nn.Module):
    def __init__(self, args: VisionArgs):
        super().__init__()
        self.args = args
        self.patch_embed = nn.Linear(args.patch_dim, args.hidden_size, bias=False)  # = Conv3d, kernel = stride
        self.blocks = nn.ModuleList(Block(args) for _ in range(args.depth))
        self.merger = Merger(args)

    def forward(self, pixels: torch.Tensor, grids: Sequence[tuple[int, int, int]]) -> torch.Tensor:
        """pixels [N, C*TP*P*P] in merge-block order, grids (t, h, w) per item -> merged [K, Do] in the same
        order."""
        a = self.args
        U = a.spatial_merge_size ** 2
        x = self.patch_embed(pixels.to(self.patch_embed.weight.dtype))  # [N, D]
        order, window_blocks = window_order(grids, a.spatial_merge_size, a.window_blocks)
        order = order.to(x.device)

        def windowed(t: torch.Tensor) -> torch.Tensor:  # [N, ...] reordered one merge block at a time
            return t.view(-1, U, *t.shape[1:])[order].flatten(0, 1)

        x = windowed(x)
        rows, cols = patch_coordinates(grids, a.spatial_merge_size)
        cos, sin = (windowed(t.to(x.device))[:, None, :] for t in rotary_cos_sin(rows, cols, a.head_dim,
                                                                                   a.rope_theta))  # [N, 1, Dh]
        frames = segment_groups([h * w for t, h, w in grids for _ in range(t)], x.device)
        windows = segment_groups([n * U for n in window_blocks], x.device)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, frames if i in a.fullatt_block_indexes else windows)
        return self.merger(x)[torch.argsort(order)]
