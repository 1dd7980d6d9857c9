"""Qwen3-Omni code predictor (MTP): the common decoder, small and dense (q/k-norm GQA attention, 1D RoPE,
SwiGLU), that writes codebooks 1..G-1 of one frame, one per step, from [talker hidden, talker.codec_embedding(code 0)].

Shapes: B batch, T tokens this call, C width, D head_dim, G code groups, Vc codebook size, L layers.
Step g (1..G-1) predicts codebook g with head g-1; its input (for g >= 2) is codebook g-1's embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from torch import nn

from ..common.decoder import Decoder, fold
from ..common.decoder_args import DecoderArgs
from ..common.kv_cache import KVCache
from ..common.sampling import filter_logits


@dataclass(frozen=True)
class CodePredictorArgs:
    text: DecoderArgs  # decoder shape (dense layers: no experts)
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
        text = DecoderArgs.from_hf_config(c)
        text = replace(text, mrope_section=(text.head_dim // 2, 0, 0), n_experts=0, sparse=(False,) * text.n_layers)
        return cls(text=text, n_groups=t.get("num_code_groups", c.get("num_code_groups")),
                   talker_vocab=t["text_config"]["vocab_size"])


class CodePredictor(Decoder):
    def __init__(self, a: CodePredictorArgs):
        super().__init__(a.text, mrope=False)
        t = a.text
        self.args = a
        self.talker_embedding = nn.Embedding(a.talker_vocab, t.dim)  # the talker's codec_embedding (code 0)
        self.codec_embedding = nn.Parameter(torch.empty(a.n_groups - 1, t.vocab_size, t.dim))  # [G-1, Vc, C]
        self.heads = nn.Parameter(torch.empty(a.n_groups - 1, t.dim, t.vocab_size))  # [G-1, C, Vc]

    def frame_cache(self) -> tuple[KVCache, int]:
        """A cache and slot for the G positions of one frame (every frame rewrites them)."""
        cache = self.new_cache()
        return cache, cache.add(self.args.n_groups)

    def rope_matrices(self) -> torch.Tensor:
        """[G, D, D]: RoPE at position p as one product (Decoder.rotations)."""
        return self.rotations(torch.arange(self.args.n_groups, device=self.freqs.device))

    def prepare(self) -> None:
        """The decoder's derived tensors, and the heads with the final norm folded in."""
        super().prepare()
        self._heads = fold(self.norm.weight, self.heads)  # [G-1, C, Vc]

    @torch.inference_mode()
    def frame(self, hidden: torch.Tensor, code0: int, choose: Callable[[torch.Tensor], int],
              cache: tuple[KVCache, int], rot: torch.Tensor) -> list[int]:
        """hidden [1, C] (talker last normed hidden), code 0 -> the frame's G codes (code 0 first).

        choose(logits [1, Vc]) -> int picks each code. Positions: hidden 0, code 0's embedding 1, then the
        embedding of code g at position g + 1; head g-1 reads position g's output to predict code g.
        """
        G, C, eps = self.args.n_groups, self.args.text.dim, self.args.text.rms_eps
        kv, slot = cache
        if self._fused is None:
            self.prepare()
        kv.truncate(slot, 0)
        self.decode(hidden, rot[0:1], kv, kv.rows([slot], 1), cache_only=True)
        x = self.talker_embedding.weight[code0].view(1, C)
        codes, heads = [code0], self._heads
        for g in range(1, G):
            h = self.decode(x, rot[g:g + 1], kv, kv.rows([slot], 1))
            codes.append(choose((h @ heads[g - 1]) * torch.rsqrt((h * h).mean(-1, keepdim=True) + eps)))
            x = self.codec_embedding[g - 1, codes[-1]].view(1, C)
        return codes


def top_k_top_p_sampler(temperature: float, top_k: int, top_p: float,
                        generator: torch.Generator | None) -> Callable[[torch.Tensor], int]:
    """choose(logits [1, V]) -> int: sample after temperature, top-k, then top-p (sampling.filter_logits), with
    the nucleus computed over the k best logits only (no sort of the vocabulary)."""
    def choose(logits: torch.Tensor) -> int:
        logits, ids = logits.float(), None
        if 0 < top_k < logits.shape[-1]:
            logits, ids = logits.topk(top_k, dim=-1)  # sorted, best first
        probs = filter_logits(logits / temperature, 0, top_p).softmax(-1)
        pick = torch.multinomial(probs, 1, generator=generator)
        return int(pick if ids is None else ids.gather(-1, pick))

    return choose
