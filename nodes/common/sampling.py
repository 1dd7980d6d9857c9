"""Next-token choice: the repetition penalty, then greedy, or sampled with temperature, top-k and top-p (in that
order, as Hugging Face's logits processors apply them) from a seeded torch.Generator.

`sample_rows` serves a batch whose rows each have their own settings and generator: the vocabulary-wide work
is batched (one top-k over the rows that have one, top_k.py; one sort over the rows with only a nucleus), then
the nucleus and the draw run over each row's candidates (its k best tokens, best first), batched over the rows
with as many candidates. A row's draw is torch.multinomial's, argmax(p / q) with q ~ Exp(1) from its own
generator, drawn in row order. So a row's token depends on its logits, settings and generator only, never on
the other rows of the batch, and is the one a per-row torch.multinomial picks. Ties at the k-th value are
broken as torch.topk breaks them. Shapes: B rows, R sampled rows, G rows of a group, V vocabulary, P previous
tokens, K candidates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .top_k import top_k


@dataclass(frozen=True)
class SamplingParams:
    greedy: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    top_p: float = 1.0  # 1.0: no nucleus filter
    repetition_penalty: float = 1.0  # 1.0: off

    def __post_init__(self):
        if not self.greedy and self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling (got {self.temperature}); use greedy instead")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (got {self.top_p})")
        if self.top_k < 0 or self.repetition_penalty <= 0:
            raise ValueError("top_k must be >= 0 and repetition_penalty > 0")


def best_read(params: SamplingParams) -> int | None:
    """How many of a row's best logits `sample_rows` reads to choose its id (without repetition penalty: greedy 1,
    top-k k), or None: all of them."""
    if params.repetition_penalty != 1.0:
        return None
    return 1 if params.greedy else params.top_k if params.top_k > 0 else None


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits [B, V]; previous [B, P] token ids: their logits are divided by penalty (multiplied if negative)."""
    seen = logits.gather(-1, previous)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, previous, seen)


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Set logits outside the top-k, then outside the top-p nucleus, to -inf (at least one token is kept)."""
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        drop = outside_nucleus(sorted_logits, top_p)
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def outside_nucleus(sorted_logits: torch.Tensor, top_p: float | torch.Tensor) -> torch.Tensor:
    """sorted_logits [..., K] (best first) -> [..., K] True past the first top_p of the probability mass (the
    best token is always kept); top_p a number, or [..., 1] one per row."""
    probs = sorted_logits.softmax(dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= top_p  # the mass of all better tokens
    drop[..., 0] = False
    return drop


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None = None,
           previous: torch.Tensor | None = None) -> torch.Tensor:
    """logits [B, V] -> next token ids [B] (int64), every row with `params`, drawing from `generator` in row
    order; previous [B, P] or None."""
    B = logits.shape[0]
    return sample_rows(logits, [params] * B, [generator] * B,
                       [None if previous is None else previous[b:b + 1] for b in range(B)])


def sample_rows(logits: torch.Tensor, params: Sequence[SamplingParams],
                generators: Sequence[torch.Generator | None],
                previous: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """logits [B, V]; per row its settings, generator and previous ids ([1, P] or None) -> next ids [B] (int64)."""
    rows = [b for b, p in enumerate(params) if not p.greedy]
    if not rows:
        return _greedy(logits, params, previous)
    V = logits.shape[-1]
    x = _scaled(logits, rows, params, previous)
    ks = [params[b].top_k if 0 < params[b].top_k < V else V for b in rows]
    groups = _candidates(x, ks, [params[b].top_p < 1.0 for b in rows])
    probs = [_nucleus_probs(values, [params[rows[j]].top_p for j in js]) for js, values, _ in groups]
    qs = [torch.empty_like(p) for p in probs]
    place = {j: (g, n) for g, (js, _, _) in enumerate(groups) for n, j in enumerate(js)}
    for j, b in enumerate(rows):  # in row order, as one torch.multinomial per row draws
        g, n = place[j]
        qs[g][n].exponential_(generator=generators[b])
    picks = torch.empty(len(rows), dtype=torch.long, device=logits.device)
    for (js, _, ids), p, q in zip(groups, probs, qs):
        if not bool((p.max() < float("inf")) & (p.min() >= 0)):  # torch.multinomial's own check
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        pick = (p / q).argmax(-1, keepdim=True)  # [G, 1]: torch.multinomial's draw, argmax(p / q), q ~ Exp(1)
        picks[js] = (pick if ids is None else ids.gather(-1, pick))[:, 0]
    if len(rows) == logits.shape[0]:
        return picks
    greedy = [b for b, p in enumerate(params) if p.greedy]
    tokens = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    tokens[greedy] = _greedy(logits[greedy], [params[b] for b in greedy], [previous[b] for b in greedy])
    tokens[rows] = picks
    return tokens


def _greedy(logits: torch.Tensor, params: Sequence[SamplingParams],
            previous: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """logits [G, V] of greedy rows -> their argmax ids [G], each row's repetition penalty applied first (as
    transformers' greedy search applies it)."""
    penalised = [b for b, p in enumerate(params) if p.repetition_penalty != 1.0
                 and previous[b] is not None and previous[b].numel()]
    if penalised:
        logits = logits.clone()
        for b in penalised:
            logits[b:b + 1] = apply_repetition_penalty(logits[b:b + 1], previous[b], params[b].repetition_penalty)
    return logits.argmax(dim=-1)


def _scaled(logits: torch.Tensor, rows: list[int], params: Sequence[SamplingParams],
            previous: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """The sampled rows of logits as float32, each with its repetition penalty, over its temperature: [R, V], a
    new tensor (the caller's logits are never written)."""
    x = logits.float() if len(rows) == logits.shape[0] else logits.index_select(
        0, torch.tensor(rows, device=logits.device)).float()
    penalised = [j for j, b in enumerate(rows) if params[b].repetition_penalty != 1.0
                 and previous[b] is not None and previous[b].numel()]
    if penalised and x is logits:
        x = x.clone()
    for j in penalised:
        b = rows[j]
        x[j:j + 1] = apply_repetition_penalty(x[j:j + 1], previous[b], params[b].repetition_penalty)
    temperatures = torch.tensor([params[b].temperature for b in rows], device=x.device)[:, None]
    return x / temperatures if x is logits else x.div_(temperatures)


def _candidates(x: torch.Tensor, ks: list[int], nucleus: list[bool]) -> list[tuple[list[int], torch.Tensor,
                                                                                  torch.Tensor | None]]:
    """x [R, V] -> groups of rows with as many candidates: (the rows, their candidates' logits [G, K], their ids
    [G, K] or None for the whole vocabulary in order), best first: the k best of rows with a top-k (one topk call;
    a group per k), the whole sorted vocabulary of rows with only a nucleus (one sort), the rest unfiltered."""
    V, groups = x.shape[-1], []
    top = [j for j, k in enumerate(ks) if k < V]
    if top:
        values, ids = top_k(x if len(top) == len(ks) else x[top], max(ks[j] for j in top))
        for k in sorted({ks[j] for j in top}):
            of_k = [n for n, j in enumerate(top) if ks[j] == k]
            if len(of_k) < len(top):
                values_k, ids_k = values[of_k, :k], ids[of_k, :k]
            else:
                values_k, ids_k = values[:, :k], ids[:, :k]
            groups.append(([top[n] for n in of_k], values_k, ids_k))
    sort = [j for j, k in enumerate(ks) if k == V and nucleus[j]]
    if sort:
        groups.append((sort, *x[sort].sort(dim=-1, descending=True)))
    plain = [j for j, k in enumerate(ks) if k == V and not nucleus[j]]
    if plain:
        groups.append((plain, x if len(plain) == len(ks) else x[plain], None))
    return groups


def _nucleus_probs(values: torch.Tensor, top_ps: list[float]) -> torch.Tensor:
    """values [G, K] (best first) -> the probabilities each row draws from, [G, K]: a row with a nucleus
    (top_p < 1) keeps its first top_p of the mass."""
    if any(p < 1.0 for p in top_ps):
        threshold = torch.tensor([p if p < 1.0 else float("inf") for p in top_ps], device=values.device)[:, None]
        values = values.masked_fill(outside_nucleus(values, threshold), float("-inf"))
    return values.softmax(-1)


def sample_among_top_k(logits: torch.Tensor, params: SamplingParams,
                       generator: torch.Generator | list[torch.Generator | None] | None = None) -> torch.Tensor:
    """logits [B, V] -> ids [B]: every row with `params` and no repetition penalty, as `sample_rows` draws them,
    with the filter and the draw batched (a row's draw is torch.multinomial's own: argmax(p / q), q ~ Exp(1)
    from its generator); `generator` may be a list, one per row, so rows of seeded runs computed together draw
    as each would alone."""
    B, V = logits.shape
    if params.greedy:
        return logits.argmax(dim=-1)
    generators = generator if isinstance(generator, list) else [generator] * B
    x, ids = logits.float() if params.temperature == 1.0 else logits.float() / params.temperature, None  # [B, V]
    if 0 < params.top_k < V:
        x, ids = top_k(x, params.top_k)  # [B, K], best first
    elif params.top_p < 1.0:
        x, ids = x.sort(dim=-1, descending=True)
    if params.top_p < 1.0:
        x = x.masked_fill(outside_nucleus(x, params.top_p), float("-inf"))
    probs = x.softmax(-1)
    q = torch.empty_like(probs)
    if B == 1:
        q.exponential_(generator=generators[0])
    else:
        for b, g in enumerate(generators):
            q[b].exponential_(generator=g)
    pick = (probs / q).argmax(-1, keepdim=True)  # [B, 1]
    return pick[:, 0] if ids is None else ids.gather(-1, pick)[:, 0]
