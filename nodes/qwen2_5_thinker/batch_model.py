"""The Qwen2.5-Omni Thinker as a model of the batching engine (nodes/common/engine.py): chunked prefill of one
prompt, whole prompts of several newcomers in one right-padded call, one decode step for many, the lm_head over
a step's last hidden states; and, for the Talker, each prompt's final-normed hidden states and each decode step's
hidden state plus input embedding.

Shapes: S prompt tokens, T tokens of a chunk, C hidden, B sequences.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn.utils.rnn import pad_sequence

from ..common.attention import last_positions
from ..common.engine import GenerationRequest
from ..common.kv_cache import KVCache, Rows

from .model import Qwen25Thinker


@dataclass
class Qwen25Inputs:
    """One prompt: embeds [1, S, C], positions [3, 1, S]; what the engine fills in while it runs."""

    embeds: torch.Tensor
    positions: torch.Tensor
    rope_delta: int  # decode position = cache length + rope_delta (on all 3 axes)
    prompt_hidden: list[torch.Tensor] = field(default_factory=list)  # [T, C] final-normed, per prefill chunk
    states: list[torch.Tensor] = field(default_factory=list)  # [C] per decode step: hidden + fed token's embedding


class Qwen25BatchModel:
    def __init__(self, model: Qwen25Thinker):
        self.model = model

    def new_cache(self) -> KVCache:
        return self.model.new_cache()

    def prefill(self, cache: KVCache, rows: Rows, request: GenerationRequest, start: int,
                count: int) -> torch.Tensor:
        p, end = request.state, start + count
        x = self.model.hidden(p.embeds[:, start:end], p.positions[:, :, start:end], cache, rows)
        p.prompt_hidden.append(x[0])
        return x[:, -1]

    def prefill_many(self, cache: KVCache, rows: Rows, requests: list[GenerationRequest]) -> torch.Tensor:
        """Whole prompts of several requests in empty slots (`rows` with their counts), right-padded into one
        call -> each one's last hidden state [B, C]; each keeps its own positions' hidden states."""
        ps = [r.state for r in requests]
        embeds = pad_sequence([p.embeds[0] for p in ps], batch_first=True)  # [B, T, C]
        positions = pad_sequence([p.positions[:, 0].T for p in ps], batch_first=True).permute(2, 0, 1)  # [3, B, T]
        x = self.model.hidden(embeds, positions, cache, rows)
        for b, (p, n) in enumerate(zip(ps, rows.counts)):
            p.prompt_hidden.append(x[b, :n])
        return last_positions(x, rows)[:, 0]

    def decode(self, cache: KVCache, rows: Rows, tokens: torch.Tensor,
               requests: list[GenerationRequest]) -> torch.Tensor:
        positions = torch.tensor([start + r.state.rope_delta for start, r in zip(rows.starts, requests)],
                                 dtype=torch.float32, device=tokens.device)
        hidden, embeds = self.model.decode_hidden(tokens, positions, cache, rows)
        states = hidden + embeds
        for i, r in enumerate(requests):
            r.state.states.append(states[i])
        return hidden

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.batch_head(hidden)

    def best_head(self, hidden: torch.Tensor, ks: list[int]) -> torch.Tensor:
        return self.model.best_head(hidden, ks)
