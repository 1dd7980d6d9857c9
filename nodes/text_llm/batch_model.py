"""TextLM as a model of the batching engine (nodes/common/engine.py): chunked prefill of one prompt's ids, whole
prompts of several newcomers in one right-padded call, and one decode step for many sequences, each giving
final-normed hidden states; `head` makes the logits of a step's rows at once. A request's `state` is its prompt ids [1, S]."""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from ..common.attention import last_positions
from ..common.engine import GenerationRequest
from ..common.kv_cache import KVCache, Rows
from .model import TextLM


class TextLMBatchModel:
    def __init__(self, model: TextLM):
        self.model = model

    def new_cache(self) -> KVCache:
        return self.model.new_cache()

    def prefill(self, cache: KVCache, rows: Rows, request: GenerationRequest, start: int,
                count: int) -> torch.Tensor:
        ids = request.state[:, start:start + count]
        return self.model.hidden_tokens(ids, start, cache, rows)[:, -1]

    def prefill_many(self, cache: KVCache, rows: Rows, requests: list[GenerationRequest]) -> torch.Tensor:
        """Whole prompts of several requests in empty slots (`rows` with their counts), right-padded into one
        call -> each one's last hidden state [B, C]."""
        ids = pad_sequence([r.state[0] for r in requests], batch_first=True)  # [B, T]
        return last_positions(self.model.hidden_tokens(ids, 0, cache, rows), rows)[:, 0]

    def decode(self, cache: KVCache, rows: Rows, tokens: torch.Tensor,
               requests: list[GenerationRequest]) -> torch.Tensor:
        positions = torch.tensor(rows.starts, dtype=torch.float32, device=tokens.device)
        return self.model.decode_hidden(tokens, positions, cache, rows)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.head(hidden)

    def best_head(self, hidden: torch.Tensor, ks: list[int]) -> torch.Tensor:
        return self.model.best_head(hidden, ks)
