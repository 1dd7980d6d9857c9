"""The Thinker as a model of the batching engine (nodes/common/engine.py): chunked prefill of one prompt
(embeddings, TM-RoPE positions, deepstack features of its visual positions), one decode step for many, and the
lm_head over a step's last hidden states.

Shapes: S prompt tokens, T tokens of a chunk, C hidden, B sequences, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..common.engine import GenerationRequest
from ..common.kv_cache import KVCache, Rows

from .model import HiddenTrace, Thinker


@dataclass
class ThinkerInputs:
    """One prompt: embeds [1, S, C], positions [3, 1, S], visual_mask [1, S] (deepstack rows follow its order)."""

    embeds: torch.Tensor
    positions: torch.Tensor
    rope_delta: float  # decode position = cache length + rope_delta (on all 3 axes)
    visual_mask: torch.Tensor | None = None
    deepstack: Sequence[torch.Tensor] = ()
    trace: HiddenTrace | None = None  # filled by the prefill


class ThinkerBatchModel:
    def __init__(self, model: Thinker):
        self.model = model

    def new_cache(self) -> KVCache:
        return self.model.new_cache()

    def prefill(self, cache: KVCache, rows: Rows, request: GenerationRequest, start: int,
                count: int) -> torch.Tensor:
        p, end = request.state, start + count
        mask, deepstack = None, ()
        if p.visual_mask is not None:
            mask = p.visual_mask[:, start:end]
            first, n = int(p.visual_mask[:, :start].sum()), int(mask.sum())
            deepstack = tuple(d[first:first + n] for d in p.deepstack)
        x = self.model.hidden(p.embeds[:, start:end], p.positions[:, :, start:end], cache, mask, deepstack,
                              p.trace, rows, last_only=True)
        return x[:, -1]

    def decode(self, cache: KVCache, rows: Rows, tokens: torch.Tensor,
               requests: list[GenerationRequest]) -> torch.Tensor:
        positions = torch.tensor([start + r.state.rope_delta for start, r in zip(rows.starts, requests)],
                                 dtype=torch.float32, device=tokens.device)
        return self.model.decode_hidden(tokens, positions, cache, rows)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.batch_head(hidden)
