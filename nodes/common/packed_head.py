"""A wide output projection (a vocabulary head) for decode batches on CPU: oneDNN with a weight packed once.

MKL's float32 product of a few rows by a [C, V] matrix packs the matrix on every call; at 8 rows by the
152064-token lm_head of the small checkpoint that step takes ~1.6x longer than oneDNN on a pre-packed copy
(measured on one core). One row keeps `x @ weight` (a matrix-vector product that streams the weight once).
Elsewhere (no oneDNN, not float32, not CPU) it is `x @ weight` too.
"""
from __future__ import annotations

import torch

_ops = getattr(torch.ops, "mkldnn", None)
AVAILABLE = (torch.backends.mkldnn.is_available() and _ops is not None
             and hasattr(_ops, "_reorder_linear_weight") and hasattr(_ops, "_linear_pointwise"))
PACK_ROWS = 16  # the batch size oneDNN packs the weight for (any row count works)


class PackedHead:
    def __init__(self, weight: torch.Tensor):
        self.weight = weight  # [C, V] (linear.py layout)
        self.packed: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C] -> [B, V]"""
        w = self.weight
        if x.shape[0] == 1 or not AVAILABLE or w.device.type != "cpu" or w.dtype != torch.float32:
            return x @ w
        if self.packed is None:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(w.t().contiguous(), PACK_ROWS)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, None, "none", [None], "")
