"""torch.topk of a few wide rows (a vocabulary's logits), faster on CPU and with the same result.

A row is cut into blocks of `BLOCK` values. The k blocks with the largest maxima hold the row's k best values
whenever the k-th largest block maximum is above the next one: any other block's values are below it, and the
k-th best value is at least it. So one max pass and a topk of those k blocks (k x BLOCK values) find them. When
the k + 1 best of those candidates are all distinct the top k is unique, hence torch.topk's; otherwise (ties,
NaN, -inf among the best) the answer is torch.topk itself. Off the CPU (where topk is one fast kernel) it is
torch.topk. Shapes: R rows, V values per row, N whole blocks, K candidates.
"""
from __future__ import annotations

import torch

BLOCK = 128  # values per block
MIN_WIDTH = 64 * BLOCK  # narrower rows go to torch.topk


def top_k(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [R, V] -> (values [R, k], ids [R, k]), best first: x.topk(k)."""
    R, V = x.shape
    n = V // BLOCK
    if x.device.type != "cpu" or V < MIN_WIDTH or not 0 < k < n:
        return x.topk(k, dim=-1)
    blocks = x[:, :n * BLOCK].view(R, n, BLOCK)
    maxima, chosen = blocks.amax(-1).topk(k + 1, dim=-1)  # [R, k + 1]
    if not bool((maxima[:, k] < maxima[:, k - 1]).all()):  # NaN or a tie at the k-th block maximum
        return x.topk(k, dim=-1)
    chosen = chosen[:, :k]
    values = blocks.gather(1, chosen[:, :, None].expand(R, k, BLOCK)).view(R, k * BLOCK)  # [R, K]
    ids = (chosen[:, :, None] * BLOCK + torch.arange(BLOCK)).view(R, k * BLOCK)
    if V > n * BLOCK:  # the values past the last whole block are always candidates
        values = torch.cat([values, x[:, n * BLOCK:]], 1)
        ids = torch.cat([ids, torch.arange(n * BLOCK, V).expand(R, -1)], 1)
    best, where = values.topk(k + 1, dim=-1)
    if not bool((best[:, 1:] < best[:, :-1]).all()):  # a tie among the best k + 1 (or NaN): torch.topk decides
        return x.topk(k, dim=-1)
    return best[:, :k], ids.gather(-1, where[:, :k])
