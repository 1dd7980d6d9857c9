"""The frames of one loaded code predictor for every concurrent run (nodes/common/step_batcher.py): the frame
requests waiting together are one batched frame, B rows through the G steps over one frame cache, each row
choosing its codes with its own run's settings and generator (all greedy: one argmax for the batch; sampled with
the same settings: one filter for the batch, then each row's draw from its own generator). Codes reach the host
once per batched frame. Fused with the Talker (nodes/talker/server.py), the Talker's server thread calls `compute`
itself with every row of its batch, and this node's own batcher is not used.

Shapes: B rows, C width, Vc codebook size, G code groups.
"""
from __future__ import annotations

import torch

from ..common.kv_cache import KVCache
from ..common.sampling import sample_among_top_k
from ..common.step_batcher import StepBatcher
from ..qwen3.loop_handoff import FrameItem

from .model import CodePredictor


class CodePredictorServer:
    def __init__(self, model: CodePredictor, max_batch: int, name: str):
        self.model = model
        self.peak_batch = 0  # the most frames computed together (for tests and benchmarks)
        self._rot = model.rope_matrices()
        self._cache: KVCache | None = None
        self._rows = 0
        self._batcher = StepBatcher(self.compute, max_batch, name)

    def frame(self, item: FrameItem) -> list[int]:
        """The G codes of `item`'s frame, computed with the frames other runs ask for now."""
        return self._batcher.call(item)

    def compute(self, items: list[FrameItem]) -> list[list[int]]:
        """One batched frame: each item's G codes (call from one thread at a time)."""
        B = len(items)
        if B > self._rows:
            self._cache, self._rows = self.model.frame_cache(B), B
        self.peak_batch = max(self.peak_batch, B)
        hidden = torch.stack([i.hidden for i in items])
        code0 = torch.tensor([i.code0 for i in items], device=hidden.device)
        return self.model.frames(hidden, code0, lambda logits: choose(logits, items), self._cache, self._rot).tolist()


def choose(logits: torch.Tensor, items: list[FrameItem]) -> torch.Tensor:
    """logits [B, Vc] -> codes [B]: row b chosen with items[b]'s settings and generator (rows sharing settings,
    as the runs of one node do, filtered together)."""
    params = items[0].params
    if all(i.params == params for i in items):
        return sample_among_top_k(logits, params, [i.generator for i in items])
    return torch.cat([sample_among_top_k(logits[b:b + 1], i.params, i.generator) for b, i in enumerate(items)])
