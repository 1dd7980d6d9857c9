"""The Thinker as a model of the batching engine (nodes/common/engine.py): chunked prefill of one prompt
(embeddings, TM-RoPE positions, deepstack features of its visual positions), whole prompts of several newcomers
in one right-padded call, one decode step for many, and the lm_head over a step's last hidden states.

Shapes: S prompt tokens, T tokens of a chunk, C hidden, B sequences, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from ..common.attention import last_positions
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

    def prefill_many(self, cache: KVCache, rows: Rows, requests: list[GenerationRequest]) -> torch.Tensor:
        """Whole prompts of several requests in empty slots (`rows` with their counts), right-padded into one
        call -> each one's last hidden state [B, C]. Visual masks and deepstack rows go in request order (the
        order `index_put` reads a [B, T] mask); each request's trace gets its own positions."""
        ps = [r.state for r in requests]
        embeds = pad_sequence([p.embeds[0] for p in ps], batch_first=True)  # [B, T, C]
        positions = pad_sequence([p.positions[:, 0].T for p in ps], batch_first=True).permute(2, 0, 1)  # [3, B, T]
        mask, deepstack = None, ()
        visual = [p for p in ps if p.deepstack]
        if visual:
            if len({len(p.deepstack) for p in visual}) > 1:
                raise ValueError("prompts with different numbers of deepstack layers are prefilled one by one")
            mask = pad_sequence([p.visual_mask[0] if p.deepstack else p.embeds.new_zeros(r.prompt_len, dtype=bool)
                                 for p, r in zip(ps, requests)], batch_first=True)
            deepstack = tuple(torch.cat(rows_of_layer) for rows_of_layer in zip(*(p.deepstack for p in visual)))
        layers = {p.trace.layer for p in ps if p.trace is not None}
        if len(layers) > 1:
            raise ValueError("prompts traced at different layers are prefilled one by one")
        trace = HiddenTrace(layers.pop()) if layers else None
        x = self.model.hidden(embeds, positions, cache, mask, deepstack, trace, rows, last_only=True)
        for b, (p, n) in enumerate(zip(ps, rows.counts)):
            if p.trace is not None:
                p.trace.embeds.append(trace.embeds[0][b:b + 1, :n])
                p.trace.hidden.append(trace.hidden[0][b:b + 1, :n])
        return (x if x.shape[1] == 1 else last_positions(x, rows))[:, 0]

    def decode(self, cache: KVCache, rows: Rows, tokens: torch.Tensor,
               requests: list[GenerationRequest]) -> torch.Tensor:
        positions = torch.tensor([start + r.state.rope_delta for start, r in zip(rows.starts, requests)],
                                 dtype=torch.float32, device=tokens.device)
        return self.model.decode_hidden(tokens, positions, cache, rows)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.batch_head(hidden)

    def best_head(self, hidden: torch.Tensor, ks: list[int]) -> torch.Tensor:
        return self.model.best_head(hidden, ks)
