"""What the lockstep decode servers of a loaded model share (nodes/talker, nodes/qwen2_5_talker): a run gives its
cache slot back with an urgent `Release` (after leaving the lockstep), says when it is away from the batcher
(handing its result on, waiting for input) and back, and the cache's live slots are counted for tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .kv_cache import KVCache
from .step_batcher import StepBatcher


@dataclass(frozen=True)
class Release:
    voice: Any  # the run's handle (its `slot`, -1 when it holds none)


class SlotServer:
    """Mixin: subclasses set `_batcher` and `_cache` and serve `Release` items in their batches."""

    _batcher: StepBatcher
    _cache: KVCache | None = None

    def release(self, voice: Any) -> None:
        self._batcher.leave(voice)
        self._batcher.call(Release(voice), urgent=True)

    def away(self, voice: Any) -> None:
        self._batcher.away(voice)

    def back(self, voice: Any) -> None:
        self._batcher.back(voice)

    @property
    def live_slots(self) -> int:
        return 0 if self._cache is None else sum(b > 0 for b in self._cache.budgets)
