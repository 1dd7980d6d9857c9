"""Qwen3-Omni Thinker text decoder: embeddings, MoE decoder layers with q/k-norm GQA attention and interleaved
MRoPE, deepstack injection, final norm and lm_head. Separate `prefill` (many tokens) and `decode_step` (one).

Shapes: B batch, T tokens this call, S prompt tokens, C hidden, V vocabulary, L layers.
Hidden-state indices follow Hugging Face's `output_hidden_states`: 0 = input embeddings, k in 1..L-1 = raw
output of layer k-1 (before any deepstack addition), L = the final-normed output.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from ..common.attention import Attention, KVCache
from ..common.decode_buffers import RopeChunks, TokenHistory
from ..common.linear import Linear
from ..common.moe import MoE, SwiGLU
from ..common.rmsnorm import RMSNorm
from ..common.rope import inv_freq, mrope_axis_map, mrope_cos_sin, rope_cos_sin


@dataclass(frozen=True)
class ThinkerArgs:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    mrope_section: tuple[int, int, int]
    n_experts: int
    top_k: int
    moe_hidden: int
    norm_topk_prob: bool
    dense_hidden: int  # width of dense (non-MoE) layers' MLP
    sparse: tuple[bool, ...]  # per layer: MoE (True) or dense MLP
    attention_bias: bool = False
    max_positions: int | None = None  # max_position_embeddings: the longest sequence the checkpoint supports

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> ThinkerArgs:
        """From config.json (full, thinker_config, or its text_config)."""
        c = config.get("thinker_config", config)
        c = c.get("text_config", c)
        rope = c.get("rope_parameters") or {}
        scaling = c.get("rope_scaling") or {}
        theta = rope.get("rope_theta", c.get("rope_theta", 10000.0))
        section = rope.get("mrope_section", scaling.get("mrope_section", [24, 20, 20]))
        n_layers, n_experts = c["num_hidden_layers"], c.get("num_experts", c.get("num_local_experts", 0))
        step, dense_only = c.get("decoder_sparse_step", 1), set(c.get("mlp_only_layers") or [])
        sparse = tuple(i not in dense_only and n_experts > 0 and (i + 1) % step == 0 for i in range(n_layers))
        return cls(vocab_size=c["vocab_size"], dim=c["hidden_size"], n_layers=n_layers,
                   n_heads=c["num_attention_heads"], n_kv_heads=c.get("num_key_value_heads", c["num_attention_heads"]),
                   head_dim=c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"],
                   rms_eps=c.get("rms_norm_eps", 1e-6), rope_theta=float(theta), mrope_section=tuple(section),
                   n_experts=n_experts, top_k=c.get("num_experts_per_tok", 0),
                   moe_hidden=c.get("moe_intermediate_size", 0), norm_topk_prob=c.get("norm_topk_prob", True),
                   dense_hidden=c.get("intermediate_size", 0), sparse=sparse,
                   attention_bias=c.get("attention_bias", False),
                   max_positions=c.get("max_position_embeddings"))


class DecoderLayer(nn.Module):
    def __init__(self, args: ThinkerArgs, sparse: bool):
        super().__init__()
        self.attn_norm = RMSNorm(args.dim, args.rms_eps)
        self.attn = Attention(args.dim, args.n_heads, args.n_kv_heads, args.head_dim, args.rms_eps,
                              qk_norm=True, qkv_bias=args.attention_bias)
        self.mlp_norm = RMSNorm(args.dim, args.rms_eps)
        self.mlp = (MoE(args.dim, args.n_experts, args.top_k, args.moe_hidden, args.norm_topk_prob) if sparse
                    else SwiGLU(args.dim, args.dense_hidden))

    def prefill(self, x, cos, sin, cache: KVCache | None):
        x = x + self.attn.prefill(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.mlp_norm(x))

    def decode(self, x, cos, sin, cache: KVCache):
        x = x + self.attn.decode(self.attn_norm(x), cos, sin, cache)
        return x + self.mlp(self.mlp_norm(x))


@dataclass
class HiddenTrace:
    """Per-position hidden states kept for the Talker: layer-0 embeddings and hidden_states[layer]."""

    layer: int
    embeds: list[torch.Tensor] = field(default_factory=list)  # [B, T, C] per call
    hidden: list[torch.Tensor] = field(default_factory=list)
    decode: bool = True  # False: keep the prompt (prefill) only, not the decode steps

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self.embeds, dim=1), torch.cat(self.hidden, dim=1)


class Thinker(nn.Module):
    def __init__(self, args: ThinkerArgs):
        super().__init__()
        self.args = args
        self.embed_tokens = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(DecoderLayer(args, s) for s in args.sparse)
        self.norm = RMSNorm(args.dim, args.rms_eps)
        self.lm_head = Linear(args.dim, args.vocab_size)
        self.register_buffer("freqs", inv_freq(args.head_dim, args.rope_theta), persistent=False)
        self.register_buffer("axis_map", mrope_axis_map(args.head_dim, args.mrope_section), persistent=False)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final-normed hidden [..., C] -> logits [..., V]."""
        return self.lm_head(x)

    def new_cache(self, batch: int, max_len: int) -> list[KVCache]:
        w = self.lm_head.weight
        return [KVCache.allocate(batch, self.args.n_kv_heads, max_len, self.args.head_dim, w.dtype, w.device)
                for _ in self.layers]

    def hidden(self, embeds: torch.Tensor, positions: torch.Tensor, caches: Sequence[KVCache] | None = None,
               visual_mask: torch.Tensor | None = None, deepstack: Sequence[torch.Tensor] = (),
               trace: HiddenTrace | None = None) -> torch.Tensor:
        """Prefill: embeds [B, T, C], positions [3, B, T] -> final-normed hidden [B, T, C] (caches filled).

        deepstack[l] [n_visual, C] is added at visual_mask [B, T] after layer l.
        """
        cos, sin = mrope_cos_sin(positions, self.freqs, self.axis_map, embeds.dtype)  # [B, T, D]
        x = embeds
        if trace is not None:
            trace.embeds.append(embeds)
        for i, layer in enumerate(self.layers):
            x = layer.prefill(x, cos, sin, None if caches is None else caches[i])
            if trace is not None and i + 1 == trace.layer < len(self.layers):
                trace.hidden.append(x)
            if i < len(deepstack) and visual_mask is not None:
                x = x.index_put((visual_mask,), deepstack[i].to(x.dtype), accumulate=True)
        x = self.norm(x)
        if trace is not None and trace.layer == len(self.layers):
            trace.hidden.append(x)
        return x

    def prefill(self, embeds, positions, caches, visual_mask=None, deepstack=(), trace=None) -> torch.Tensor:
        """Like `hidden`, but returns logits of the last position only: [B, V]."""
        x = self.hidden(embeds, positions, caches, visual_mask, deepstack, trace)
        return self.head(x[:, -1])

    def logits(self, embeds, positions, visual_mask=None, deepstack=()) -> torch.Tensor:
        """Logits at every position [B, T, V] (no cache; for tests and scoring)."""
        return self.head(self.hidden(embeds, positions, None, visual_mask, deepstack))

    def decode_step(self, tokens: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, caches: Sequence[KVCache],
                    trace: HiddenTrace | None = None) -> torch.Tensor:
        """tokens [B]; cos/sin [B, 1, D] of its position -> logits [B, V]."""
        x = self.embed_tokens(tokens)[:, None]  # [B, 1, C]
        if trace is not None and not trace.decode:
            trace = None
        if trace is not None:
            trace.embeds.append(x)
        for i, layer in enumerate(self.layers):
            x = layer.decode(x, cos, sin, caches[i])
            if trace is not None and i + 1 == trace.layer < len(self.layers):
                trace.hidden.append(x)
        x = self.norm(x)
        if trace is not None and trace.layer == len(self.layers):
            trace.hidden.append(x)
        return self.head(x[:, 0])

    def decode_rope(self, start: int, count: int, rope_delta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin [count, D] for decode positions start + i + rope_delta (the same on all 3 axes)."""
        pos = torch.arange(start, start + count, device=self.freqs.device).float() + torch.tensor(
            rope_delta, dtype=torch.float32, device=self.freqs.device)
        return rope_cos_sin(pos, self.freqs, self.lm_head.weight.dtype)


@torch.inference_mode()
def generate(model: Thinker, embeds: torch.Tensor, positions: torch.Tensor, rope_delta: float,
             choose: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], max_new_tokens: int,
             stop_ids: Sequence[int] = (), prompt_ids: torch.Tensor | None = None,
             visual_mask: torch.Tensor | None = None, deepstack: Sequence[torch.Tensor] = (),
             trace: HiddenTrace | None = None) -> Iterator[int]:
    """Yield generated token ids of one sequence (embeds [1, S, C], positions [3, 1, S]) as they are chosen.

    choose(logits [1, V], previous ids [1, P]) -> [1] picks the next token; previous ids are the prompt ids
    (if given) and the tokens generated so far. Stops after a stop id (which is yielded) or max_new_tokens.
    The last generated token is never fed back, so a trace covers prompt + generated - 1 positions.
    """
    if max_new_tokens <= 0:
        return
    S = embeds.shape[1]
    caches = model.new_cache(1, S + max_new_tokens)  # grows as tokens come (attention.KVCache)
    rope = RopeChunks(lambda first, count: model.decode_rope(S + first, count, rope_delta), max_new_tokens)
    history = TokenHistory(embeds.device, prompt_ids)
    stops = set(int(s) for s in stop_ids)
    logits = model.prefill(embeds, positions, caches, visual_mask, deepstack, trace)
    for step in range(max_new_tokens):
        token = choose(logits, history.view())  # [1]
        history.append(token)
        token_id = int(token[0])
        yield token_id
        if token_id in stops or step + 1 == max_new_tokens:
            return
        logits = model.decode_step(token, *rope.at(step), caches, trace)

def user_turn_mask(ids: torch.Tensor, im_start: int, user: int) -> torch.Tensor:
    """ids [S] -> [S] bool: tokens whose most recent <|im_start|> (itself included) is followed by `user`."""
    S = ids.shape[0]
    is_start = ids == im_start
    next_is_user = torch.zeros(S, dtype=torch.bool, device=ids.device)
    next_is_user[:-1] = ids[1:] == user
    idx = torch.arange(S, device=ids.device)
    last_start = torch.where(is_start, idx, torch.full_like(idx, -1)).cummax(0).values  # [S], -1 before any
    return (last_start >= 0) & next_is_user[last_start.clamp(min=0)]


def build_talker_context(ids: torch.Tensor, embeds: torch.Tensor, hidden: torch.Tensor | None,
                         media_ids: Sequence[int], im_start: int, user: int, extras: dict[str, Any]):
    """A TalkerContext of the user turns of a prompt: ids [S], embeds/hidden [S, C] (layer 0 / layer k).

    `hidden` is kept only when the user turns hold media (only media positions read it).
    """
    from ...runtime.media_payloads import TalkerContext

    keep = user_turn_mask(ids, im_start, user)
    user_ids = ids[keep]
    media = torch.isin(user_ids, torch.tensor(list(media_ids), device=ids.device))
    with torch.no_grad():  # plain tensors (not inference tensors) in the payload
        kept_hidden = hidden[keep].clone() if hidden is not None and bool(media.any()) else None
        return TalkerContext(ids=user_ids.clone(), embeds=embeds[keep].clone(), hidden=kept_hidden,
                             media_mask=media, extras=dict(extras))
