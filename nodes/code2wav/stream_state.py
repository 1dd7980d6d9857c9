"""The causal state of many Code2Wav streams, one slot per stream, preallocated: the attention layers' last
keys/values in a windowed KVCache (a ring, nothing concatenated per step), and for each causal conv the last
(k-1)*dilation inputs (the last input of each overlapping transposed conv) in a [slots, C, context] buffer.

A decode call over some slots is a `Step`: modules read their past rows (a view when the slots are consecutive)
and hand over their new tails; `commit` stores the tails and advances the slots' frame counts. Nothing a step
writes is visible before `commit` (the attention cells it fills hold positions no query of a retry can see), so
a failed call leaves every stream as it was and can be retried.
"""
from __future__ import annotations

import sys

import torch

from ..common.kv_cache import KVCache


class StreamState:
    def __init__(self, convs: dict[str, tuple[int, int]], kv: KVCache):
        """convs: stateful conv module key -> (channels, context) (see Code2Wav.new_state)."""
        self.kv = kv
        self.buffers = {key: torch.zeros(1, c, n, dtype=kv.dtype, device=kv.device) for key, (c, n) in convs.items()}
        self.started: list[set[str]] = [set()]  # per slot: the transposed convs that hold their last input

    def add(self) -> int:
        """A slot for a new stream (its state zero: the same as a fresh whole decode)."""
        slot = self.kv.add(sys.maxsize)
        slots = len(self.kv.budgets)
        for key, buffer in self.buffers.items():
            if buffer.shape[0] < slots:
                grown = buffer.new_zeros(slots, *buffer.shape[1:])
                grown[:buffer.shape[0]] = buffer
                self.buffers[key] = buffer = grown
            buffer[slot].zero_()
        self.started += [set() for _ in range(slots - len(self.started))]
        self.started[slot] = set()
        return slot

    def free(self, slot: int) -> None:
        self.kv.free(slot)

    @property
    def live(self) -> bool:
        return any(self.kv.budgets)

    def frames(self, slot: int) -> int:
        """Frames the slot's stream has decoded so far."""
        return self.kv.lengths[slot]

    def begin(self, calls: list[tuple[list[int], int]]) -> list[Step]:
        """A Step for each (slots, frames) call of one batch (no slot in two calls); commit each after all ran."""
        self.kv.reserve(max(count for _, count in calls))
        return [Step(self, slots, count) for slots, count in calls]


class Step:
    """One decode call of `count` new frames for each of `slots` (rows of the batch, in this order)."""

    def __init__(self, state: StreamState, slots: list[int], count: int):
        self.state, self.slots = state, slots
        self.rows = state.kv.rows(slots, count)
        self.positions = self.rows.positions  # [B, T] RoPE positions
        index = self.rows.index  # every slot, in order (a single stream, a full batch): the buffers are the rows
        self._every_slot = isinstance(index, slice) and index == slice(0, len(state.kv.budgets))
        self._tails: dict[str, torch.Tensor] = {}
        self._started: set[str] = set()

    def past(self, key: str) -> torch.Tensor:
        """The rows' stored inputs of module `key` [B, C, context]."""
        buffer = self.state.buffers[key]
        return buffer if self._every_slot else buffer[self.rows.index]

    def keep(self, key: str, tail: torch.Tensor) -> None:
        """Module `key`'s new past [B, C, context], stored at `commit` (copied now: the larger tensor it is cut
        from is freed at once)."""
        self._tails[key] = tail.clone()

    def started(self, key: str) -> bool:
        """Whether transposed conv `key` holds a last input for these rows (False in a stream's first chunk)."""
        flags = {key in self.state.started[s] for s in self.slots}
        if len(flags) > 1:
            raise RuntimeError(f"{key}: rows at different stream phases in one call (group them by phase)")
        return flags.pop()

    def mark_started(self, key: str) -> None:
        self._started.add(key)

    def commit(self) -> None:
        index, buffers = self.rows.index, self.state.buffers
        for key, tail in self._tails.items():
            if self._every_slot:  # the tails are the new buffers: nothing to copy
                buffers[key] = tail
            elif isinstance(index, slice):
                buffers[key][index] = tail
            else:
                buffers[key].index_copy_(0, index, tail)
        for s in self.slots:
            self.state.started[s] |= self._started
        self.state.kv.commit(self.rows)
