"""Qwen3-Omni code predictor (MTP): the common decoder, small and dense (q/k-norm GQA attention, 1D RoPE,
SwiGLU), that writes codebooks 1..G-1 of one frame, one per step, from [talker hidden, talker.codec_embedding(code 0)].

Shapes: B batch, T tokens this call, C width, D head_dim, G code groups, Vc codebook size, L layers.
Step g (1..G-1) predicts codebook g with head g-1; its input (for g >= 2) is codebook g-1's embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...runtime.checkpoint_config import config_problem
from ..common.decoder import Decoder, fold
from ..common.decoder_args import DecoderArgs
from ..common.kv_cache import KVCache
from ..common.packed_head import PackedHead


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
        talker_dim, groups = t["text_config"]["hidden_size"], t.get("num_code_groups", c.get("num_code_groups"))
        if text.dim != talker_dim:
            raise config_problem(c, "hidden_size", f"must equal talker_config.text_config.hidden_size ({talker_dim}): "
                                                   "the code predictor reads the Talker's hidden state, and its codec "
                                                   "embeddings are summed into the Talker's next input")
        if c.get("num_code_groups", groups) != groups:
            raise config_problem(c, "num_code_groups", f"must equal talker_config.num_code_groups ({groups})")
        return cls(text=text, n_groups=groups,
                   talker_vocab=t["text_config"]["vocab_size"])


class CodePredictor(Decoder):
    def __init__(self, a: CodePredictorArgs):
        super().__init__(a.text, mrope=False)
        t = a.text
        self.args = a
        self.talker_embedding = nn.Embedding(a.talker_vocab, t.dim)  # the talker's codec_embedding (code 0)
        self.codec_embedding = nn.Parameter(torch.empty(a.n_groups - 1, t.vocab_size, t.dim))  # [G-1, Vc, C]
        self.heads = nn.Parameter(torch.empty(a.n_groups - 1, t.dim, t.vocab_size))  # [G-1, C, Vc]

    def frame_cache(self, rows: int) -> KVCache:
        """A cache of `rows` slots (0..rows-1) for the G positions of one frame (every frame rewrites them)."""
        cache = self.new_cache()
        for _ in range(rows):
            cache.add(self.args.n_groups)
        return cache

    def rope_matrices(self) -> torch.Tensor:
        """[G, D, D]: RoPE at position p as one product (Decoder.rotations)."""
        return self.rotations(torch.arange(self.args.n_groups, device=self.freqs.device))

    def prepare(self) -> None:
        """The decoder's derived tensors, and the heads with the final norm folded in, each as decode batches
        multiply it (a oneDNN-packed copy for several rows on CPU: MKL packs a [C, Vc] head on every few-row call);
        the codebooks' embedding tables as views, so a step indexes no stack."""
        super().prepare()
        heads = fold(self.norm.weight, self.heads)  # [G-1, C, Vc]
        self._heads = [PackedHead(head, onednn=True) for head in heads]
        for head in self._heads:
            head.pack()
        self._tables = self.codec_embedding.detach().unbind(0)  # G-1 x [Vc, C]

    @torch.inference_mode()
    def frames(self, hidden: torch.Tensor, code0: torch.Tensor, choose: Callable[[torch.Tensor], torch.Tensor],
               cache: KVCache, rot: torch.Tensor) -> torch.Tensor:
        """hidden [B, C] (talker last normed hidden per row), code0 [B] -> the frames' codes [B, G] (code 0 first).

        choose(logits [B, Vc]) -> codes [B] picks each step's codes. Every row sits at the same positions (slots
        0..B-1 of a frame_cache), so no mask: hidden at 0, code 0's embedding at 1, then the embedding of code g
        at g + 1; head g-1 reads position g's output to predict code g. Codes stay on the device.
        """
        eps = self.args.text.rms_eps
        if self._fused is None:
            self.prepare()
        slots = list(range(hidden.shape[0]))
        for slot in slots:
            cache.truncate(slot, 0)
        rots = rot.split(1)  # G x [1, D, D]
        self.decode(hidden, rots[0], cache, cache.rows(slots, 1), cache_only=True)
        x, codes = F.embedding(code0, self.talker_embedding.weight), [code0]
        for g, (head, table) in enumerate(zip(self._heads, self._tables), start=1):
            h = self.decode(x, rots[g], cache, cache.rows(slots, 1))
            codes.append(choose(head(h).mul_(torch.rsqrt((h * h).mean(-1, keepdim=True) + eps))))
            x = F.embedding(codes[-1], table)
        return torch.stack(codes, dim=1)
