"""SwiGLU MLP and a top-k routed mixture of experts (optionally with a sigmoid-gated shared expert).

Shapes: N tokens, C model width, E experts, k experts per token, I expert width. Weights have shape [in, out]
(see linear.py) and expert weights stacked: w_gate_up [E, C, 2I] (gate columns then up columns), w_down [E, I, C].

Routing: softmax(router(x)) in float32, top-k, renormalised to sum 1 when `norm_topk_prob` (computed as the softmax
of the top-k logits: the same), cast to x's dtype.
Many tokens: (token, expert) pairs are sorted by expert, and all pairs are gathered at once; each expert runs its
two products over its contiguous slice (`_grouped`). On CPU from `EXPERT_BY_EXPERT_MIN_TOKENS` tokens (a long
prefill) each expert instead gathers its own tokens, runs both products and adds its rows into the output before
the next expert starts, so the rows in flight stay in the core's cache (`_expert_by_expert`; the small
checkpoint's 1000-token prefill 623 -> 566 ms, best of 3 alternated in one process on one core; 36 and 256 tokens
within noise; it runs ~4 more tensor ops per expert, which few-row steps would feel). Either way each used
expert's weights are read once.
One token on CPU: only its k experts run, on views of the stacked weights. Few tokens elsewhere (a decode batch):
a gather + bmm, which needs no host sync. Many tokens elsewhere (a prefill on CUDA): the sorted pairs run as two
`torch._grouped_mm` products over all experts, group offsets from a device-side cumulative count (no host sync, no
Python loop over experts), where this torch has it and it serves these weights (probed once in `prepare`);
otherwise `_grouped`.
Few tokens on CPU (2 to `ALL_EXPERTS_MAX_TOKENS`) once they are expected to use at least half the experts
(1 - (1 - k/E)^N >= 1/2; the small checkpoint: from 3 tokens): every expert runs as two products by oneDNN-packed
matrices over all of them, the routing weights (0 for an expert a token did not choose) scaling the activations,
in a fixed dozen tensor ops (`_all_experts`; at 8 tokens the small checkpoint's MoE layer: MKL per expert ~1.65
ms, packed over all ~0.8 ms, measured on one core). Where linear.py `all_experts_for_decode_rows` packs them
(float32 CPU, small stacks).
"""
from __future__ import annotations

import math
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import nn

from .linear import Linear, all_experts_for_decode_rows, to_in_out

GATHER_MAX_TOKENS = 64  # off the CPU, up to this many tokens run as gathered expert weights and one bmm
ALL_EXPERTS_MAX_TOKENS = 16  # more tokens run `_grouped`
EXPERT_BY_EXPERT_MIN_TOKENS = 256  # on CPU, this many tokens and more run `_expert_by_expert`


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)), gate and up fused into one [C, 2I] matrix."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w_gate_up = Linear(dim, 2 * hidden)
        self.w_down = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w_gate_up(x).chunk(2, dim=-1)
        return self.w_down(F.silu(gate) * up)


def fuse_gate_up(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Checkpoint gate/up projection weights [I, C] -> `SwiGLU.w_gate_up.weight` [C, 2I]."""
    return to_in_out(torch.cat([gate, up], dim=0))


def stack_experts(gate: list[torch.Tensor], up: list[torch.Tensor],
                  down: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Checkpoint per-expert [I, C], [I, C], [C, I] weights -> (w_gate_up [E, C, 2I], w_down [E, I, C])."""
    gate_up = torch.cat([torch.stack(gate), torch.stack(up)], dim=1)  # [E, 2I, C]: three ops, not 2E
    return to_in_out(gate_up), to_in_out(torch.stack(down))


class MoE(nn.Module):
    def __init__(self, dim: int, n_experts: int, top_k: int, hidden: int, norm_topk_prob: bool,
                 shared_hidden: int = 0):
        super().__init__()
        self.n_experts, self.top_k, self.norm_topk_prob = n_experts, top_k, norm_topk_prob
        self.router = Linear(dim, n_experts)
        self.w_gate_up = nn.Parameter(torch.empty(n_experts, dim, 2 * hidden))
        self.w_down = nn.Parameter(torch.empty(n_experts, hidden, dim))
        self.shared = SwiGLU(dim, shared_hidden) if shared_hidden else None
        self.shared_gate = Linear(dim, 1) if shared_hidden else None
        self._views = None  # (weight storages, per-expert views): see _expert_views
        self._all = None  # (gate/up [C, E*2I], down [E*I, C] products, fewest tokens): see prepare
        self._grouped_mm_serves = False  # see prepare

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, C] -> weights [N, k] (x's dtype), expert ids [N, k]."""
        logits = torch.mm(x, self.router.weight)  # (no module call, nor casts that change nothing: per decode layer)
        if logits.dtype != torch.float32:
            logits = logits.float()
        if self.norm_topk_prob:  # the top k of the softmax, renormalised: the softmax of the top k logits
            top, experts = logits.topk(self.top_k, dim=-1)
            weights = top.softmax(-1)
        else:
            weights, experts = logits.softmax(-1).topk(self.top_k, dim=-1)
        return (weights if weights.dtype == x.dtype else weights.to(x.dtype)), experts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., C] -> [..., C]"""
        flat = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])  # [N, C]
        weights, experts = self.route(flat)
        N = flat.shape[0]
        if flat.device.type == "cpu":  # a host sync costs nothing here
            if N == 1:
                out = self._one_token_views(flat, weights, experts)
            elif self._all is not None and self._all[2] <= N <= ALL_EXPERTS_MAX_TOKENS:
                out = self._all_experts(flat, weights, experts)
            elif N >= EXPERT_BY_EXPERT_MIN_TOKENS:
                out = self._expert_by_expert(flat, weights, experts)
            else:
                out = self._grouped(flat, weights, experts)
        elif N <= GATHER_MAX_TOKENS:
            out = self._gathered(flat, weights, experts)
        elif self._grouped_mm_serves:
            out = self._grouped_mm(flat, weights, experts)
        else:
            out = self._grouped(flat, weights, experts)
        if self.shared is not None:
            out = out + torch.sigmoid(self.shared_gate(flat)) * self.shared(flat)
        return out if flat is x else out.view_as(x)

    def prepare(self) -> None:
        """Once the weights are in their final place: the packed all-experts products of few-token steps on CPU
        (the module docstring), or none."""
        self._grouped_mm_serves = self.w_gate_up.device.type != "cpu" and grouped_mm_serves(self)
        products = all_experts_for_decode_rows(self.w_gate_up.detach(), self.w_down.detach())
        self._all = None
        if products is not None and self.top_k < self.n_experts:
            fewest = math.ceil(math.log(0.5) / math.log(1 - self.top_k / self.n_experts))  # expected to use half
            self._all = (*products, max(2, fewest))

    def _all_experts(self, x: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """x [N, C] (few tokens): every expert on every token, each expert's activations scaled by the token's
        routing weight for it (0 if not chosen)."""
        gate_up, down, _ = self._all
        N, E = x.shape[0], self.n_experts
        scale = weights.new_zeros(N, E).scatter_(1, experts, weights)  # [N, E]
        gate, up = gate_up(x).view(N, E, -1).chunk(2, dim=-1)  # [N, E, I] each
        return down((F.silu(gate) * up * scale[:, :, None]).view(N, -1))

    def _grouped(self, x: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """(token, expert) pairs sorted by expert: per expert, one gate/up and one down product over its contiguous
        slice, written in place; the activation and routing scale run once over all pairs."""
        N, k = experts.shape
        flat_experts = experts.flatten()  # [N*k]
        order = flat_experts.argsort(stable=True)  # (token, expert) pairs grouped by expert
        tokens = order // k  # token of each sorted pair
        counts = torch.bincount(flat_experts, minlength=self.n_experts).tolist()
        spans = [(e, end - n, end) for e, n, end in zip(range(self.n_experts), counts, accumulate(counts)) if n]
        xs = x.index_select(0, tokens)  # [N*k, C]; on one CPU core 2.8x (1000 tokens) to 6x (36) faster than x[tokens]
        gate_up = xs.new_empty(N * k, self.w_gate_up.shape[-1])
        for e, start, end in spans:
            torch.matmul(xs[start:end], self.w_gate_up[e], out=gate_up[start:end])
        gate, up = gate_up.chunk(2, dim=-1)
        h = F.silu(gate).mul_(up).mul_(weights.flatten()[order].unsqueeze(-1))  # the routing scale, on I-wide rows
        ys = xs.new_empty(N * k, x.shape[-1])
        for e, start, end in spans:
            torch.matmul(h[start:end], self.w_down[e], out=ys[start:end])
        return torch.zeros_like(x).index_add_(0, tokens, ys)

    def _grouped_mm(self, x: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """(token, expert) pairs sorted by expert, each of the two products one `torch._grouped_mm` over all experts
        (group e = pairs offs[e-1]:offs[e]); no host sync."""
        N, k = experts.shape
        flat_experts = experts.flatten()  # [N*k]
        order = flat_experts.argsort(stable=True)
        tokens = order // k
        offs = torch.bincount(flat_experts, minlength=self.n_experts).cumsum(0).to(torch.int32)  # [E]
        xs = x.index_select(0, tokens)  # [N*k, C]
        gate, up = torch._grouped_mm(xs, self.w_gate_up, offs=offs).chunk(2, dim=-1)  # [N*k, I] each
        h = F.silu(gate) * up * weights.flatten()[order].unsqueeze(-1)
        ys = torch._grouped_mm(h, self.w_down, offs=offs)  # [N*k, C]
        return torch.zeros_like(x).index_add_(0, tokens, ys)

    def _expert_by_expert(self, x: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """(token, expert) pairs sorted by expert; per used expert: gather its tokens, gate/up product, activation
        and routing scale, down product, and its rows added into the output (the module docstring)."""
        k = experts.shape[1]
        flat_experts = experts.flatten()  # [N*k]
        order = flat_experts.argsort(stable=True)
        tokens, scale = order // k, weights.flatten()[order].unsqueeze(-1)  # per sorted pair
        counts = torch.bincount(flat_experts, minlength=self.n_experts).tolist()
        out = torch.zeros_like(x)
        for e, n, end in zip(range(self.n_experts), counts, accumulate(counts)):
            if n:
                rows = tokens[end - n:end]
                gate, up = (x.index_select(0, rows) @ self.w_gate_up[e]).chunk(2, dim=-1)
                out.index_add_(0, rows, (F.silu(gate).mul_(up).mul_(scale[end - n:end])) @ self.w_down[e])
        return out

    def _one_token_views(self, x, weights, experts):
        """x [1, C]: run its k experts only, on views of the stacked weights (no copy), in few tensor ops (this
        runs once per layer and token): the k gate/up rows, one activation over them, then the routing-weighted
        sum of the down products accumulated in place."""
        views = self._expert_views()
        ids, scale = experts.tolist()[0], weights.tolist()[0]
        gate, up = torch.cat([torch.mm(x, views[e][0]) for e in ids]).chunk(2, dim=-1)  # [k, I] each
        h = (F.silu(gate) * up).split(1)  # k x [1, I]
        out = torch.mm(h[0], views[ids[0]][1]).mul_(scale[0])
        for j in range(1, len(ids)):
            out.addmm_(h[j], views[ids[j]][1], alpha=scale[j])
        return out

    def _expert_views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per expert, views of its (gate/up [C, 2I], down [I, C]) weights, made once per weight storage (a decode
        step then indexes a list, not a tensor)."""
        key = (self.w_gate_up.data_ptr(), self.w_down.data_ptr())
        if self._views is None or self._views[0] != key:
            self._views = key, list(zip(self.w_gate_up.detach().unbind(0), self.w_down.detach().unbind(0)))
        return self._views[1]

    def _gathered(self, x, weights, experts):
        """x [N, C] (few tokens): gather each token's k experts' weights and run them as one batched product
        (no host sync)."""
        N, k = experts.shape
        ids = experts.flatten()  # [N*k]
        xs = x.repeat_interleave(k, dim=0)[:, None]  # [N*k, 1, C]
        gate, up = torch.bmm(xs, self.w_gate_up[ids]).chunk(2, -1)  # [N*k, 1, I] each
        ys = torch.bmm(F.silu(gate) * up, self.w_down[ids]).view(N, k, -1)  # [N, k, C]
        return (weights[:, None] @ ys).squeeze(1)


def grouped_mm_serves(moe: MoE) -> bool:
    """Whether `torch._grouped_mm` exists here and computes `moe`'s products on its weights' device, dtype and layout
    (kernels differ in what they accept: dtypes, 16-byte aligned strides): two experts' products on a few random
    rows, against plain products."""
    if not hasattr(torch, "_grouped_mm"):
        return False
    w = moe.w_gate_up.detach()
    x = torch.randn(4, w.shape[1], device=w.device, dtype=w.dtype)
    offs = torch.tensor([2] + [4] * (moe.n_experts - 1), device=w.device, dtype=torch.int32)
    try:
        got = torch._grouped_mm(x, w, offs=offs)
    except (RuntimeError, NotImplementedError):
        return False
    want = torch.cat([x[:2] @ w[0], x[2:] @ w[1]])
    return bool(torch.allclose(got.float(), want.float(), rtol=1e-2, atol=1e-2 * float(want.abs().max())))
