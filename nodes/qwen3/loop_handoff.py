"""The contract of the fused Talker <-> code predictor loop (nodes/talker/server.py computes both):

- `FrameItem`: one row of a batched code predictor frame (the Talker's hidden state, code 0, the run's sampling);
- `FusablePredictor`: what a code predictor node offers the Talker that fuses it;
- `Handoff`: frames the fused Talker computed, waiting for the request that asks for each, by run: the Talker
  puts frame s before it yields request s; the code predictor's thread of that run takes it when request s
  arrives. A run's leftovers go when either side of it ends cancelled.
"""
from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from ..common.sampling import SamplingParams


@dataclass(frozen=True)
class FrameItem:
    hidden: torch.Tensor  # [C] on the model's device and dtype
    code0: int
    params: SamplingParams
    generator: torch.Generator | None  # the run's own (None when greedy)


@runtime_checkable
class FusablePredictor(Protocol):
    device: str | None
    dtype: Any
    handoff: Handoff | None

    def accepts(self, width: int, groups: int) -> bool: ...

    def fused_frames(self, items: list[FrameItem]) -> list[list[int]]: ...

    def sampling(self, run: Any) -> tuple[Any, Any]: ...


class Handoff:
    def __init__(self):
        self._lock = threading.Lock()
        self._frames: defaultdict[str, deque[tuple[int, tuple[int, ...]]]] = defaultdict(deque)

    def put(self, run_id: str, index: int, codes: tuple[int, ...]) -> None:
        with self._lock:
            self._frames[run_id].append((index, codes))

    def take(self, run_id: str, index: int) -> tuple[int, ...]:
        with self._lock:
            frames = self._frames.get(run_id)
            if not frames or frames[0][0] != index:
                raise RuntimeError(f"code predictor: frame request {index} of run {run_id} has no frame from the "
                                   f"fused talker (next held: {frames[0][0] if frames else 'none'})")
            codes = frames.popleft()[1]
            if not frames:
                del self._frames[run_id]
            return codes

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._frames.pop(run_id, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(map(len, self._frames.values()))
