"""Qwen3-Omni code predictor (MTP): a small dense decoder (q/k-norm GQA attention, 1D RoPE, SwiGLU) that
writes codebooks 1..G-1 of one frame, one per step, from [talker hidden, talker.codec_embedding(code 0)].

Shapes: B batch, T tokens this call, C width, D head_dim, G code groups, Vc codebook size, L layers.
Step g (1..G-1) predicts codebook g with head g-1; its input (for g >= 2) is codebook g-1's embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.rmsnorm import RMSNorm
from ..common.rope import apply_rope, inv_freq, rope_cos_sin
from ..thinker.model import DecoderLayer, ThinkerArgs


@dataclass(frozen=True)
class CodePredictorArgs:
    text: ThinkerArgs  # decoder shape (dense layers: no experts)
    n_groups: int  # G
    talker_vocab: int  # rows of the talker's codec_embedding (code 0 plus control ids)

    @property
    def codebook_size(self) -> int:
        return self.text.vocab_size

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> CodePredictorArgs:
        """From config.json (full, or its talker_config)."""
        t = config.get("talker_config", config)
        c = t["code_predictor_config"]
        text = ThinkerArgs.from_hf_config(c)
        text = replace(text, mrope_section=(text.head_dim // 2, 0, 0), n_experts=0, sparse=(False,) * text.n_layers)
        return cls(text=text, n_groups=t.get("num_code_groups", c.get("num_code_groups")),
                   talker_vocab=t["text_config"]["vocab_size"])


class CodePredictor(nn.Module):
    def __init__(self, a: CodePredictorArgs):
        super().__init__()
        t = a.text
        self.args = a
        self.talker_embedding = nn.Embedding(a.talker_vocab, t.dim)  # the talker's codec_embedding (code 0)
        self.codec_embedding = nn.Parameter(torch.empty(a.n_groups - 1, t.vocab_size, t.dim))  # [G-1, Vc, C]
        self.layers = nn.ModuleList(DecoderLayer(t, False) for _ in range(t.n_layers))
        self.norm = RMSNorm(t.dim, t.rms_eps)
        self.heads = nn.Parameter(torch.empty(a.n_groups - 1, t.dim, t.vocab_size))  # [G-1, C, Vc]
        self.register_buffer("freqs", inv_freq(t.head_dim, t.rope_theta), persistent=False)

    def new_cache(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, keys and values [K, G, D] for the G positions of one frame (rewritten every frame)."""
        t, w = self.args.text, self.heads
        shape = (t.n_kv_heads, self.args.n_groups, t.head_dim)
        return [(torch.zeros(shape, dtype=w.dtype, device=w.device), torch.zeros(shape, dtype=w.dtype, device=w.device))
                for _ in self.layers]

    def rope_matrices(self) -> torch.Tensor:
        """[G, D, D]: RoPE at position p as one product, x @ R[p] == x * cos_p + rotate_half(x) * sin_p."""
        D = self.args.text.head_dim
        cos, sin = rope_cos_sin(torch.arange(self.args.n_groups, device=self.freqs.device), self.freqs, torch.float32)
        eye = torch.eye(D, device=self.freqs.device)
        return apply_rope(eye[None], cos[:, None], sin[:, None]).to(self.heads.dtype)  # rows: rotated basis vectors

    def step(self, x: torch.Tensor, pos: int, rot: torch.Tensor,
             caches: Sequence[tuple[torch.Tensor, torch.Tensor]], cache_only: bool = False) -> torch.Tensor:
        """One token x [1, C] at position `pos` (caches hold 0..pos-1) -> pre-norm output [1, C].
        `cache_only`: only fill the caches (the last layer's MLP is skipped; the return value is meaningless).

        The maths of DecoderLayer.decode, written for one token with few tensor ops (per frame this runs G
        times per layer, so per-op overhead dominates): RMSNorm weights folded into the next matrix
        (rmsnorm(x) @ W == rsqrt(mean(x^2) + eps) * (x @ (w * W))), q/k norms as one call, RoPE as one product.
        """
        H, K, D, eps = self._shape
        for (wqkv, bias, w_qk, wo, w_gate_up, w_down), (keys, values) in zip(self._fast, caches):
            qkv = (x @ wqkv) * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)  # [1, (H + 2K) D]
            if bias is not None:
                qkv = qkv + bias
            qk = (F.rms_norm(qkv[0, :(H + K) * D].view(H + K, D), (D,), None, eps) * w_qk) @ rot[pos]  # [H+K, D]
            keys[:, pos] = qk[H:]
            values[:, pos] = qkv[0, (H + K) * D:].view(K, D)
            out = F.scaled_dot_product_attention(qk[:H].view(1, H, 1, D), keys[None, :, :pos + 1],
                                                 values[None, :, :pos + 1], enable_gqa=True)  # [1, H, 1, D]
            x = x + out.view(1, H * D) @ wo
            if cache_only and keys is caches[-1][0]:
                break
            gate, up = ((x @ w_gate_up) * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)).chunk(2, -1)
            x = x + (F.silu(gate) * up) @ w_down
        return x

    def prepare(self) -> None:
        """Derived tensors, once the weights are loaded: per layer the matrices with the preceding RMSNorm
        weight folded in, the q and k norm weights stacked [H+K, D]; the heads with the final norm folded in."""
        t = self.args.text
        H, K = t.n_heads, t.n_kv_heads
        self._shape = (H, K, t.head_dim, t.rms_eps)

        def fold(norm: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [C], [..., C, N] -> [..., C, N]
            return (norm.float()[:, None] * w.float()).to(w.dtype)

        self._fast = [(fold(layer.attn_norm.weight, layer.attn.wqkv.weight), layer.attn.wqkv.bias,
                       torch.cat([layer.attn.q_norm.weight.expand(H, -1), layer.attn.k_norm.weight.expand(K, -1)]),
                       layer.attn.wo.weight, fold(layer.mlp_norm.weight, layer.mlp.w_gate_up.weight),
                       layer.mlp.w_down.weight) for layer in self.layers]
        self._heads = fold(self.norm.weight, self.heads)  # [G-1, C, Vc]

    @torch.inference_mode()
    def frame(self, hidden: torch.Tensor, code0: int, choose: Callable[[torch.Tensor], int],
              caches: Sequence[tuple[torch.Tensor, torch.Tensor]], rot: torch.Tensor) -> list[int]:
        """hidden [1, C] (talker last normed hidden), code 0 -> the frame's G codes (code 0 first).

        choose(logits [1, Vc]) -> int picks each code. Positions: hidden 0, code 0's embedding 1, then the
        embedding of code g at position g + 1; head g-1 reads position g's output to predict code g.
        """
        G, C, eps = self.args.n_groups, self.args.text.dim, self.args.text.rms_eps
        self.step(hidden, 0, rot, caches, cache_only=True)
        x = self.talker_embedding.weight[code0].view(1, C)
        codes = [code0]
        for g in range(1, G):
            h = self.step(x, g, rot, caches)
            codes.append(choose((h @ self._heads[g - 1]) * torch.rsqrt((h * h).mean(-1, keepdim=True) + eps)))
            x = self.codec_embedding[g - 1, codes[-1]].view(1, C)
        return codes


def top_k_top_p_sampler(temperature: float, top_k: int, top_p: float,
                        generator: torch.Generator | None) -> Callable[[torch.Tensor], int]:
    """choose(logits [1, V]) -> int: sample after temperature, top-k, then top-p (nucleus over the top-k),
    the filters of nodes/common/sampling.py, computed on the k best logits only (no sort of the vocabulary)."""
    from ..common.sampling import SamplingParams, sample

    if top_k <= 0:
        params = SamplingParams(temperature=temperature, top_k=0, top_p=top_p)
        return lambda logits: int(sample(logits, params, generator))

    def choose(logits: torch.Tensor) -> int:
        values, ids = logits[0].float().topk(min(top_k, logits.shape[-1]))  # sorted, best first
        probs = (values / temperature).softmax(-1)
        if top_p < 1.0:
            drop = (probs.cumsum(-1) - probs) >= top_p  # probability of all better tokens reaches top_p
            probs = probs.masked_fill(drop, 0.0)
        return int(ids[torch.multinomial(probs, 1, generator=generator)])

    return choose
