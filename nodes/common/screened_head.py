"""The vocabulary head of a decode step whose rows read only their k best logits (greedy: k = 1; top-k sampling
without repetition penalty: its k), on CPU: a bfloat16 copy of the head screens every token, and float32 logits
are computed only for the tokens whose float32 logit could be among a row's k best; every other logit is -inf.

The screen is one oneDNN product of the rows in bfloat16 by a packed bfloat16 copy (half the bytes of the float32
head, and the CPU's bf16 dot-product instructions: measured on one Zen 4 core at the small checkpoint's
512 x 152064 head, 1 row ~9.5 ms against ~14.5 ms in float32, 8 rows ~12 against ~24). Its distance to any
float32 logit is bounded per row b and token v (x the row, w the token's head column, ~ their bfloat16 copies,
s the screened logit, u = 2^-24, C the width):
    |fp32(x . w) - s| <= |x - ~x| max|w| + |~x| max|w - ~w| + 2 C u (|~x| max|~w| + |x| max|w|) + 2^-6 |s|
(Cauchy-Schwarz over the rounding of x and of the head, max|w - ~w| and max|~w| bounded from max|w|; the float32
sums of the screen and of the exact logit; the bfloat16 rounding of the screen's output, twice over so that a
truncating conversion is covered too), times `SLACK`, where |.| of a vector is its 2-norm and max runs over the
tokens. The k-th largest of a row's block maxima (blocks of top_k.py's `BLOCK` tokens) is the screened logit of k
distinct tokens, so its lower bound is at most the row's k-th best float32 logit; a token is a candidate when its
upper bound reaches that. Each candidate's logit is computed in float32 by its own dot product with the row, so a
row's logits do not depend on the other rows of the batch. The k best of the result are the k best of the float32
logits: same ids, same values. A batch with a row that is not finite, too few blocks for its k or more than
`MAX_CANDIDATES` candidates gets None (the caller computes the full head).
Shapes: B rows, C width, V vocabulary, N blocks, M candidates.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .packed_head import PACK_ROWS, PAD_ROWS, onednn_serves
from .top_k import BLOCK, MIN_WIDTH

SLACK = 1.01  # the bound's own rounding (the head's norm in float32, the rows' in float64, compared in float32)
OUTPUT_ROUNDING = 2.0 ** -6  # relative error of the screen's bfloat16 output, twice the rounding (see above)
MAX_CANDIDATES = 4096  # per row on average; more (very flat logits) computes the full head instead


def screen_serves(weight: torch.Tensor) -> bool:
    """Whether a [C, V] float32 head is screened here: CPU with oneDNN and native bfloat16 dot products, and a
    vocabulary wide enough for blocks."""
    return (onednn_serves(weight) and weight.shape[1] >= MIN_WIDTH
            and torch.ops.mkldnn._is_mkldnn_bf16_supported())


class ScreenedHead:
    def __init__(self, weight: torch.Tensor):
        """weight [C, V] float32 (linear.py layout; see `screen_serves`): keeps the float32 token rows [V, C]
        (each candidate's logit reads its own row; no copy where weight is a transposed view of [V, C]) and a
        packed bfloat16 copy."""
        self.rows = weight.detach().t().contiguous()  # [V, C]
        low = self.rows.to(torch.bfloat16)
        C = weight.shape[0]
        self.w_max = float(self.rows.norm(dim=-1).max())  # a float32 norm: its rounding is within SLACK
        # rounding to bfloat16 moves each value by at most 2^-8 of it, or half a subnormal step (2^-134)
        self.rounding_max = 2.0 ** -8 * self.w_max + C ** 0.5 * 2.0 ** -134
        self.low_max = self.w_max + self.rounding_max
        self.packed = torch.ops.mkldnn._reorder_linear_weight(low, PACK_ROWS)
        self.gamma = C * 2.0 ** -24 / (1 - C * 2.0 ** -24)  # a C-term float32 dot product's relative error

    def __call__(self, x: torch.Tensor, ks: Sequence[int]) -> torch.Tensor | None:
        """x [B, C] float32, ks[b] >= 1 the best logits row b reads -> logits [B, V] float32, exact wherever a
        row's k best could be and -inf elsewhere; or None (see the module docstring)."""
        B, V = x.shape[0], self.rows.shape[0]
        n = V // BLOCK
        k = torch.tensor(ks, device=x.device)[:, None]  # [B, 1]
        if max(ks) > n:
            return None
        low = x.to(torch.bfloat16)
        padded = low if B >= PAD_ROWS else torch.cat([low, low.new_zeros(PAD_ROWS - B, low.shape[1])])
        s = torch.ops.mkldnn._linear_pointwise(padded, self.packed, None, "none", [None], "")[:B]  # [B, V] bf16
        blocks = s[:, :n * BLOCK].view(B, n, BLOCK)
        maxima = blocks.amax(-1).float()  # [B, N]
        kth = maxima.topk(max(ks), dim=-1).values.gather(1, k - 1)  # [B, 1]
        margin = self._margin(x, low).to(x.device)  # [B, 1]
        if not bool(torch.isfinite(maxima).all() & torch.isfinite(margin).all()):
            return None
        lower = kth - margin - OUTPUT_ROUNDING * kth.abs()  # at most row b's k-th best float32 logit
        reach = lower - margin  # the least s + OUTPUT_ROUNDING |s| of a candidate
        tau = torch.where(reach >= 0, reach / (1 + OUTPUT_ROUNDING), reach / (1 - OUTPUT_ROUNDING))  # [B, 1]
        hit = (maxima >= tau).nonzero()  # [H, 2]: (row, block) holding a candidate
        where = (blocks[hit[:, 0], hit[:, 1]].float() >= tau[hit[:, 0]]).nonzero()  # [M, 2]: (hit, offset)
        row, ids = hit[where[:, 0], 0], hit[where[:, 0], 1] * BLOCK + where[:, 1]
        if V > n * BLOCK:  # the tokens past the last whole block are compared one by one
            tail = (s[:, n * BLOCK:].float() >= tau).nonzero()
            row, ids = torch.cat([row, tail[:, 0]]), torch.cat([ids, tail[:, 1] + n * BLOCK])
        if ids.numel() > MAX_CANDIDATES * B:
            return None
        out = x.new_full((B, V), float("-inf"))
        out[row, ids] = (self.rows.index_select(0, ids) * x.index_select(0, row)).sum(-1)
        return out

    def _margin(self, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """[B, 1] float32: the bound of the module docstring without its output term."""
        x64, low64 = x.double(), low.double()
        x_norm, low_norm = x64.norm(dim=-1, keepdim=True), low64.norm(dim=-1, keepdim=True)
        bound = ((x64 - low64).norm(dim=-1, keepdim=True) * self.w_max + low_norm * self.rounding_max
                 + 2 * self.gamma * (low_norm * self.low_max + x_norm * self.w_max))
        return (SLACK * bound).float()
