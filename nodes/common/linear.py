"""A linear layer whose weight has shape [in, out], so every product is `x @ weight`.

torch.nn.Linear keeps [out, in]. Checkpoint loaders transpose with `to_in_out` (contiguous [in, out]), and
`for_device` then picks the memory layout (the strides; the shape stays [in, out]) that few-row products read
fastest: on CPU (MKL, one core) a single-row product by a widening or square matrix (out >= in) is up to 2x
faster on contiguous [in, out], by a narrowing one (out < in) 1.05-2.2x faster on [out, in] memory (a
transposed view); at 8 rows both layouts are within ~10%, and large batches (prefill) run at the same speed.
Off the CPU, and for weights (or expert stacks) under `MIN_ELEMENTS`, the layout stays [in, out].
Decode batches of 2-16 rows on CPU multiply a layer's matrices of at least `MIN_ELEMENTS` by a oneDNN-packed
copy (`for_decode_rows`, packed_head.py): MKL packs such a matrix on every few-row call (measured on one core,
the small Thinker's wqkv at 8 rows: 477 us with MKL, 310 us packed); one row keeps `x @ weight`. Expert stacks
also get packed products over all their experts (`all_experts_for_decode_rows`, for moe.py's few-token path).
A packed copy doubles a matrix's memory, so matrices and stacks over `PACKED_MAX_ELEMENTS` (a 7B dense model's MLP,
the released model's expert stacks) are not copied.
"""
from __future__ import annotations

import torch
from torch import nn

from .packed_head import PackedHead, onednn_serves


def to_in_out(weight: torch.Tensor) -> torch.Tensor:
    """A checkpoint's [out, in] weight (or [E, out, in] stack) -> our contiguous [in, out] ([E, in, out])."""
    return weight.transpose(-1, -2).contiguous()


MIN_ELEMENTS = 2**19  # smaller weights (2 MiB in float32) sit in a core's cache: the layout gains nothing there, and
# the transposed product's extra dispatch cost the small Talker + code predictor ~8% (measured on one core)


def for_device(weight: torch.Tensor) -> torch.Tensor:
    """Our weight [..., in, out] (a matrix or a stack) in the memory layout its device reads fastest in few-row
    products (see the module docstring): the same tensor, or on CPU a narrowing matrix's values as a transposed
    view of contiguous [..., out, in] memory."""
    if (weight.device.type != "cpu" or weight.dim() < 2 or weight.shape[-1] >= weight.shape[-2]
            or weight.numel() < MIN_ELEMENTS):
        return weight
    return weight.transpose(-1, -2).contiguous().transpose(-1, -2)


PACKED_MAX_ELEMENTS = 2**24  # per matrix or expert stack (64 MiB in float32)


def all_experts_for_decode_rows(gate_up: torch.Tensor,
                                down: torch.Tensor) -> tuple[PackedHead, PackedHead] | None:
    """Expert stacks gate_up [E, C, 2I], down [E, I, C] -> packed products by every expert at once, x [N, C] @
    [C, E * 2I] and h [N, E * I] @ [E * I, C] (expert e's columns / rows at e * 2I / e * I), for several rows on
    CPU in float32; None where they would not be packed (elsewhere, or stacks over PACKED_MAX_ELEMENTS).
    They hold a [C, E * 2I] copy of gate_up and the packed copies of both (never used for one row)."""
    if not onednn_serves(gate_up) or gate_up.numel() > PACKED_MAX_ELEMENTS:
        return None
    C = gate_up.shape[1]
    products = PackedHead(gate_up.permute(1, 0, 2).reshape(C, -1)), PackedHead(down.reshape(-1, C))
    for product in products:
        product.pack()
    return products


def for_decode_rows(weight: torch.Tensor) -> PackedHead:
    """A layer matrix [in, out] as decode steps multiply it: `for_device`'s layout for one row, and a packed copy
    for several rows where that is faster (the module docstring), made now."""
    product = PackedHead(for_device(weight), onednn=MIN_ELEMENTS <= weight.numel() <= PACKED_MAX_ELEMENTS)
    product.pack()
    return product


class Linear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight
        return y if self.bias is None else y + self.bias
