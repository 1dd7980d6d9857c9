"""Next-token choice: greedy, or sampled with repetition penalty, temperature, top-k and top-p (in that order,
as Hugging Face's logits processors apply them) from a seeded torch.Generator.

Shapes: B rows, V vocabulary, P previous tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of all better tokens
        drop = mass_before >= top_p
        drop[..., 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None = None,
           previous: torch.Tensor | None = None) -> torch.Tensor:
    """logits [B, V] -> next token ids [B] (int64)."""
    if params.greedy:
        return logits.argmax(dim=-1)
    logits = logits.float()
    if params.repetition_penalty != 1.0 and previous is not None and previous.numel():
        logits = apply_repetition_penalty(logits, previous, params.repetition_penalty)
    logits = filter_logits(logits / params.temperature, params.top_k, params.top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sample_among_top_k(logits: torch.Tensor, params: SamplingParams,
                       generator: torch.Generator | list[torch.Generator | None] | None = None) -> torch.Tensor:
    """logits [B, V] -> ids [B]: `sample` without the repetition penalty, drawing among the top_k best only (the
    nucleus computed over those), so the vocabulary is never sorted. The same distribution as `sample`.
    `generator` may be a list, one per row: rows of seeded runs computed together then draw as each would alone."""
    if params.greedy:
        return logits.argmax(dim=-1)
    logits, ids = logits.float(), None
    if 0 < params.top_k < logits.shape[-1]:
        logits, ids = logits.topk(params.top_k, dim=-1)  # sorted, best first
    probs = filter_logits(logits / params.temperature, 0, params.top_p).softmax(dim=-1)
    if isinstance(generator, list):
        pick = torch.cat([torch.multinomial(probs[b:b + 1], 1, generator=g) for b, g in enumerate(generator)])
    else:
        pick = torch.multinomial(probs, 1, generator=generator)
    return (pick if ids is None else ids.gather(-1, pick)).squeeze(-1)
