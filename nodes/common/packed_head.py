"""A matrix product for decode batches on CPU: oneDNN with a weight packed once. Used for the vocabulary head, and
for a decoder layer's matrices (linear.py `for_decode_rows`, moe.py's all-experts products).

MKL's float32 product of a few rows by a [C, V] matrix packs the matrix on every call; at 8 rows by the
152064-token lm_head of the small checkpoint that step takes ~1.6x longer than oneDNN on a pre-packed copy
(measured on one core). oneDNN's product of 2 or 3 rows costs about as much as two single-row products, while
4 rows cost less than one (its kernels block rows by 4; measured on one core: 2 rows ~28 ms, the same 2 rows
padded with zero rows to 4 ~18 ms), so fewer than `PAD_ROWS` rows are padded. One row keeps `x @ weight` (a
matrix-vector product that streams the weight once). Elsewhere (no oneDNN, not float32, not CPU) it is
`x @ weight` too. `pack` (at load) makes the packed copy, so the first batched step does not pay for it.
"""
from __future__ import annotations

import torch

_ops = getattr(torch.ops, "mkldnn", None)
AVAILABLE = (torch.backends.mkldnn.is_available() and _ops is not None
             and hasattr(_ops, "_reorder_linear_weight") and hasattr(_ops, "_linear_pointwise"))
PACK_ROWS = 16  # the batch size oneDNN packs the weight for (any row count works)
PAD_ROWS = 4  # fewer rows than this (but more than one) are padded to it


def onednn_serves(weight: torch.Tensor) -> bool:
    """Whether oneDNN multiplies by this matrix (CPU, float32, oneDNN in this torch)."""
    return AVAILABLE and weight.device.type == "cpu" and weight.dtype == torch.float32


class PackedHead:
    def __init__(self, weight: torch.Tensor, onednn: bool = True):
        """weight [C, V] (linear.py layout); `onednn=False`: always `x @ weight`."""
        self.weight = weight
        self.packed: torch.Tensor | None = None
        self.uses_onednn = onednn and onednn_serves(weight)

    def pack(self) -> None:
        """Make the packed copy now (the first batched call does it otherwise)."""
        if self.uses_onednn and self.packed is None:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.t().contiguous(), PACK_ROWS)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C] -> [B, V]"""
        B = x.shape[0]
        if B == 1 or not self.uses_onednn:
            return torch.mm(x, self.weight)
        self.pack()
        if B < PAD_ROWS:
            x = torch.cat([x, x.new_zeros(PAD_ROWS - B, x.shape[1])])
        out = torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, None, "none", [None], "")
        return out[:B] if B < PAD_ROWS else out
