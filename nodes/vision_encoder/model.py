"""The Qwen3-VL-style vision tower of Qwen3-Omni: patch embedding, interpolated learned positions, 2D rotary,
pre-LayerNorm blocks with attention per temporal slice, deepstack mergers and the final 2x2 patch merger.

Shapes: N patches (all items packed), D hidden size, H heads, Dh head dim, M spatial merge size,
K = N / M^2 merged tokens, Do output size, (t, h, w) an item's patch grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...runtime.errors import UserError
from ..common.segments import SegmentGroup, segment_attention, segment_groups
from ..common.vision_blocks import PatchMerger, TowerSizes, apply_rotary, patch_coordinates, rotary_cos_sin

_ACTS = {"gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
         "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
         "gelu": F.gelu, "silu": F.silu, "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x)}


@dataclass(frozen=True)
class VisionArgs(TowerSizes):
    depth: int = 27
    hidden_size: int = 1152
    num_heads: int = 16
    intermediate_size: int = 4304
    hidden_act: str = "gelu_pytorch_tanh"
    in_channels: int = 3
    patch_size: int = 16
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    num_position_embeddings: int = 2304
    deepstack_visual_indexes: tuple[int, ...] = (8, 16, 24)
    out_hidden_size: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> VisionArgs:
        """From a full Qwen3-Omni config.json, a thinker config, or a vision config dict."""
        if "thinker_config" in config:
            config = config["thinker_config"]
        if "vision_config" in config:
            config = config["vision_config"]
        fields = {f: config[f] for f in cls.__dataclass_fields__ if f in config}
        if "deepstack_visual_indexes" in fields:
            fields["deepstack_visual_indexes"] = tuple(fields["deepstack_visual_indexes"])
        rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
        fields["rope_theta"] = float(rope.get("rope_theta", config.get("rope_theta", cls.rope_theta)))
        args = cls(**fields)
        args.check()
        return args

    @property
    def grid_side(self) -> int:
        return math.isqrt(self.num_position_embeddings)

    def check(self) -> None:
        problems = self.size_problems()
        if self.grid_side ** 2 != self.num_position_embeddings:
            problems.append(f"num_position_embeddings {self.num_position_embeddings} is not a perfect square")
        if any(not 0 <= i < self.depth for i in self.deepstack_visual_indexes):
            problems.append(f"deepstack_visual_indexes {list(self.deepstack_visual_indexes)} must be < depth "
                            f"{self.depth}")
        if self.hidden_act not in _ACTS:
            problems.append(f"hidden_act '{self.hidden_act}' is not one of {sorted(_ACTS)}")
        if problems:
            raise UserError("vision_config in config.json is not usable: " + "; ".join(problems))


def patch_positions(grids: Sequence[tuple[int, int, int]], merge: int, side: int) -> tuple[torch.Tensor, ...]:
    """Per patch, in packed merge-block order: (row [N], col [N]) integer patch coordinates and the
    (row, col) position [N] float32 on the side x side learned grid (linspace(0, side-1, h/w))."""
    rows, cols = patch_coordinates(grids, merge)
    sizes = [t * h * w for t, h, w in grids]
    pos_r = [torch.linspace(0, side - 1, h)[r] for (_, h, _), r in zip(grids, rows.split(sizes))]
    pos_c = [torch.linspace(0, side - 1, w)[c] for (_, _, w), c in zip(grids, cols.split(sizes))]
    return rows, cols, torch.cat(pos_r), torch.cat(pos_c)


def interpolate_positions(table: torch.Tensor, pos_r: torch.Tensor, pos_c: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup in a learned [side*side, D] position table at float grid positions [N] -> [N, D]."""
    side = math.isqrt(table.shape[0])
    r0, c0 = pos_r.floor().long(), pos_c.floor().long()
    r1, c1 = (r0 + 1).clamp(max=side - 1), (c0 + 1).clamp(max=side - 1)
    dr, dc = (pos_r - r0)[:, None], (pos_c - c0)[:, None]
    dr, dc = dr.to(table.dtype), dc.to(table.dtype)
    return ((1 - dr) * (1 - dc) * table[r0 * side + c0] + (1 - dr) * dc * table[r0 * side + c1]
            + dr * (1 - dc) * table[r1 * side + c0] + dr * dc * table[r1 * side + c1])


class Attention(nn.Module):
    def __init__(self, args: VisionArgs):
        super().__init__()
        self.num_heads, self.head_dim = args.num_heads, args.head_dim
        self.qkv = nn.Linear(args.hidden_size, 3 * args.hidden_size)
        self.proj = nn.Linear(args.hidden_size, args.hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                segs: Sequence[SegmentGroup]) -> torch.Tensor:
        n = x.shape[0]
        q, k, v = self.qkv(x).view(n, 3, self.num_heads, self.head_dim).unbind(1)  # each [N, H, Dh]
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return self.proj(segment_attention(q, k, v, segs).reshape(n, -1))


class Block(nn.Module):
    def __init__(self, args: VisionArgs):
        super().__init__()
        self.norm1 = nn.LayerNorm(args.hidden_size, eps=args.norm_eps)
        self.attn = Attention(args)
        self.norm2 = nn.LayerNorm(args.hidden_size, eps=args.norm_eps)
        self.fc1 = nn.Linear(args.hidden_size, args.intermediate_size)
        self.fc2 = nn.Linear(args.intermediate_size, args.hidden_size)
        self.act = _ACTS[args.hidden_act]

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                segs: Sequence[SegmentGroup]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, segs)
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class VisionEncoder(nn.Module):
    def __init__(self, args: VisionArgs):
        super().__init__()
        self.args = args
        self.patch_embed = nn.Linear(args.patch_dim, args.hidden_size)  # = Conv3d with kernel = stride
        self.pos_embed = nn.Parameter(torch.zeros(args.num_position_embeddings, args.hidden_size))
        self.blocks = nn.ModuleList(Block(args) for _ in range(args.depth))
        self.merger = PatchMerger(nn.LayerNorm(args.hidden_size, eps=args.norm_eps), args.merged_dim,
                                  args.out_hidden_size)
        self.deepstack_mergers = nn.ModuleList(
            PatchMerger(nn.LayerNorm(args.merged_dim, eps=args.norm_eps), args.merged_dim, args.out_hidden_size,
                        post_shuffle=True) for _ in args.deepstack_visual_indexes)

    def forward(self, pixels: torch.Tensor, grids: Sequence[tuple[int, int, int]]
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """pixels [N, C*TP*P*P] in merge-block order, grids (t, h, w) per item ->
        merged [K, Do] and one [K, Do] tensor per deepstack level."""
        a = self.args
        check_grids(grids, pixels.shape[0], a.spatial_merge_size)
        rows, cols, pos_r, pos_c = patch_positions(grids, a.spatial_merge_size, a.grid_side)
        x = self.patch_embed(pixels.to(self.patch_embed.weight.dtype))  # [N, D]
        x = x + interpolate_positions(self.pos_embed, pos_r.to(x.device), pos_c.to(x.device))
        cos, sin = rotary_cos_sin(rows, cols, a.head_dim, a.rope_theta)
        cos, sin = cos.to(x.device)[:, None, :], sin.to(x.device)[:, None, :]  # [N, 1, Dh]
        segs = segment_groups([h * w for t, h, w in grids for _ in range(t)], x.device)  # one per temporal slice
        deepstack = []
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, segs)
            if i in a.deepstack_visual_indexes:
                deepstack.append(self.deepstack_mergers[a.deepstack_visual_indexes.index(i)](x))
        return self.merger(x), deepstack


def check_grids(grids: Sequence[tuple[int, int, int]], n_patches: int, merge: int) -> None:
    if not grids:
        raise UserError("the vision encoder got no images or videos")
    for t, h, w in grids:
        if t < 1 or h < merge or w < merge or h % merge or w % merge:
            raise UserError(f"patch grid (t={t}, h={h}, w={w}) is invalid: t >= 1 and h, w multiples of {merge}")
    total = sum(t * h * w for t, h, w in grids)
    if total != n_patches:
        raise UserError(f"patch grids cover {total} patches but {n_patches} patch rows were given")
