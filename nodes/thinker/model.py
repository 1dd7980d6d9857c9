"""Qwen3-Omni Thinker text decoder: embeddings, the common decoder (nodes/common/decoder.py: MoE layers with
q/k-norm GQA attention and interleaved MRoPE), deepstack injection, and lm_head. `hidden` runs a prefill (many
tokens of one sequence), `decode_step` one token for each of many sequences.

Shapes: B batch, T tokens this call, S prompt tokens, C hidden, V vocabulary, L layers.
Hidden-state indices follow Hugging Face's `output_hidden_states`: 0 = input embeddings, k in 1..L-1 = raw
output of layer k-1 (before any deepstack addition), L = the final-normed output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..common.decode_buffers import TokenHistory
from ..common.decode_head import DecodeHeads
from ..common.decoder import Decoder
from ..common.decoder_args import DecoderArgs as ThinkerArgs
from ..common.kv_cache import KVCache, Rows
from ..common.linear import Linear


@dataclass
class HiddenTrace:
    """Per-position hidden states kept for the Talker: layer-0 embeddings and hidden_states[layer]."""

    layer: int
    embeds: list[torch.Tensor] = field(default_factory=list)  # [B, T, C] per call
    hidden: list[torch.Tensor] = field(default_factory=list)
    decode: bool = True  # False: keep the prompt (prefill) only, not the decode steps

    def add_embeds(self, x: torch.Tensor) -> None:
        """A call's input embeddings; they are also the kept hidden states when `layer` is 0."""
        self.embeds.append(x)
        if self.layer == 0:
            self.hidden.append(x)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self.embeds, dim=1), torch.cat(self.hidden, dim=1)


class Thinker(DecodeHeads, Decoder):
    def __init__(self, args: ThinkerArgs):
        super().__init__(args)
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dim)
        self.lm_head = Linear(args.dim, args.vocab_size)

    def decode_head_weight(self) -> torch.Tensor:
        """The lm_head [C, V] of decode steps (decode_head.py: `batch_head`, `best_head`)."""
        return self.lm_head.weight

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden [..., C] -> logits [..., V]."""
        return self.lm_head(x)

    def hidden(self, embeds: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None,
               visual_mask: torch.Tensor | None = None, deepstack: Sequence[torch.Tensor] = (),
               trace: HiddenTrace | None = None, rows: Rows | None = None, last_only: bool = False) -> torch.Tensor:
        """Prefill: embeds [B, T, C], positions [3, B, T] -> final-normed hidden [B, T, C] (the rows' cache
        slots filled; with a cache B = 1 or right-padded whole prompts, see Decoder.prefill). deepstack[l]
        [n_visual, C] is added at visual_mask [B, T] after layer l.
        `last_only`: only the last position is needed (Decoder.prefill; -> [B, 1, C] unless the trace or the
        deepstack need the last layer's every position).
        """
        cos, sin = self.cos_sin(positions, embeds.dtype)  # [B, T, D]
        n = len(self.layers)

        def after_layer(i: int, x: torch.Tensor) -> torch.Tensor:
            if trace is not None and i + 1 == trace.layer < n:
                trace.hidden.append(x)
            if i < len(deepstack) and visual_mask is not None:
                x = x.index_put((visual_mask,), deepstack[i].to(x.dtype), accumulate=True)
            return x

        if trace is not None:
            trace.add_embeds(embeds)
        last_only = last_only and len(deepstack) < n and (trace is None or trace.layer < n)
        x = self.prefill(embeds, cos, sin, cache, rows, after_layer, last_only)
        if trace is not None and trace.layer == n:
            trace.hidden.append(x)
        return x

    def logits(self, embeds, positions, visual_mask=None, deepstack=()) -> torch.Tensor:
        """Logits at every position [B, T, V] (no cache; for tests and scoring)."""
        return self.head(self.hidden(embeds, positions, None, visual_mask, deepstack))

    def decode_step(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache, rows: Rows,
                    trace: HiddenTrace | None = None, best: int | None = None) -> torch.Tensor:
        """tokens [B] of the rows' sequences, positions [B] (float: cache length + rope delta) -> logits [B, V];
        `best`: only each row's `best` best logits are read (`best_head`)."""
        x = self.decode_hidden(tokens, positions, cache, rows, trace)
        return self.batch_head(x) if best is None else self.best_head(x, [best] * x.shape[0])

    def decode_hidden(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache, rows: Rows,
                      trace: HiddenTrace | None = None) -> torch.Tensor:
        """`decode_step` before the lm_head: -> final-normed hidden [B, C]."""
        x = self.embed_tokens(tokens)  # [B, C]
        if trace is not None and not trace.decode:
            trace = None
        n, after_layer = len(self.layers), None
        if trace is not None:
            trace.add_embeds(x[:, None])

            def after_layer(i: int, h: torch.Tensor) -> torch.Tensor:
                if i + 1 == trace.layer < n:
                    trace.hidden.append(h[:, None])
                return h

        x = self.norm(self.decode(x, self.rotations(positions), cache, rows, after_layer))
        if trace is not None and trace.layer == n:
            trace.hidden.append(x[:, None])
        return x


@torch.inference_mode()
def generate(model: Thinker, embeds: torch.Tensor, positions: torch.Tensor, rope_delta: float,
             choose: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], max_new_tokens: int,
             stop_ids: Sequence[int] = (), prompt_ids: torch.Tensor | None = None,
             visual_mask: torch.Tensor | None = None, deepstack: Sequence[torch.Tensor] = (),
             trace: HiddenTrace | None = None, best: int | None = None) -> Iterator[int]:
    """Yield generated token ids of one sequence (embeds [1, S, C], positions [3, 1, S]) as they are chosen.

    choose(logits [1, V], previous ids [1, P]) -> [1] picks the next token; previous ids are the prompt ids
    (if given) and the tokens generated so far; `best`: choose reads only the `best` best logits (greedy: 1; the
    others may be -inf, see `Thinker.best_head`). Stops after a stop id (which is yielded) or max_new_tokens.
    The last generated token is never fed back, so a trace covers prompt + generated - 1 positions.
    """
    if max_new_tokens <= 0:
        return
    S = embeds.shape[1]
    cache = model.new_cache()  # grows as tokens come (kv_cache.py)
    slot = cache.add(S + max_new_tokens)
    history = TokenHistory(embeds.device, prompt_ids)
    stops = set(int(s) for s in stop_ids)
    x = model.hidden(embeds, positions, cache, visual_mask, deepstack, trace, cache.rows([slot], S), last_only=True)
    logits = model.head(x[:, -1]) if best is None else model.best_head(x[:, -1], [best])
    for step in range(max_new_tokens):
        token = choose(logits, history.view())  # [1]
        history.append(token)
        token_id = int(token[0])
        yield token_id
        if token_id in stops or step + 1 == max_new_tokens:
            return
        position = torch.tensor([S + step + rope_delta], dtype=torch.float32, device=embeds.device)
        logits = model.decode_step(token, position, cache, cache.rows([slot], 1), trace, best)
