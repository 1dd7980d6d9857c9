"""One KV cache for many sequences: per layer, keys and values [slots, K, capacity, D], written in place.

A sequence takes a slot (`add`, with its budget: the most positions it may ever hold) and gives it back
(`free`) while the others continue. Each slot has its own length. The capacity (positions) and the number of
slots grow by doubling, so memory follows what is generated, never past the largest budget of a live sequence,
and growth costs O(1) per position; a step that fits allocates nothing.

A forward call first asks for `rows(slots, count)`: where its `count` new positions per slot go, which keys
they may see (a mask when the slots' lengths differ) and how to read them; every layer then calls `write`,
and `commit(rows)` advances the lengths once all layers ran. Shapes: B rows, T new positions, L keys read.

With a `window` W (sliding-window attention, e.g. Code2Wav's), a slot keeps only what its next queries can see:
position p lives in ring cell p % capacity, the capacity is W - 1 + the most positions one call writes (fixed,
whatever the budget, so a stream may pass an unbounded budget such as sys.maxsize), nothing is ever copied or
concatenated per step, and several rows may write several positions each, at different lengths. `write`
returns every cell; the rows' mask shows each query the last W positions up to its own (None when all cells
are visible: one new position per row, the window full; or one row of one position before the ring wraps,
which reads only the cells written so far).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

INITIAL_CAPACITY = 256  # positions a cache holds before it first grows


@dataclass
class Rows:
    """Where one forward call's T new positions per row go."""

    slots: list[int]
    starts: list[int]  # each row's length before the call
    count: int  # T
    index: slice | torch.Tensor  # the slots, as a view (consecutive slots) or a gather index
    positions: torch.Tensor | None  # [B] write positions (decode with several rows; [B, T] with a window), else None
    slot_ids: torch.Tensor | None  # [B] the slots (decode with several rows), else None
    mask: torch.Tensor | None  # [B, 1, T, L] True = visible; None: causal from 0 (prefill) or all visible (decode)
    end: int  # L: the keys read (max(starts) + count; with a window, the capacity or the cells written so far)
    cells: torch.Tensor | None = None  # [B, T] ring cells of the new positions (with a window), else None


class KVCache:
    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device | str, window: int | None = None):
        if window is not None and window < 1:
            raise ValueError(f"a window holds at least one position (got {window})")
        self.n_layers, self.shape, self.dtype, self.device = n_layers, (n_kv_heads, head_dim), dtype, device
        self.window = window
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.lengths: list[int] = []  # per slot
        self.budgets: list[int] = []  # per slot; 0 = free
        self._allocate(1, 1)

    @property
    def capacity(self) -> int:
        return self.k[0].shape[2]

    def add(self, budget: int) -> int:
        """A free slot for a sequence of at most `budget` positions."""
        if budget <= 0:
            raise ValueError(f"a sequence needs a budget of at least one position (got {budget})")
        slot = next((s for s, b in enumerate(self.budgets) if b == 0), None)
        if slot is None:
            slot = len(self.budgets)
            self._allocate(2 * slot, self.capacity)
        self.budgets[slot], self.lengths[slot] = budget, 0
        return slot

    def free(self, slot: int) -> None:
        self.budgets[slot], self.lengths[slot] = 0, 0

    def truncate(self, slot: int, length: int) -> None:
        """Forget the slot's positions from `length` on (they are overwritten by the next writes)."""
        self.lengths[slot] = min(self.lengths[slot], length)

    def rows(self, slots: list[int], count: int) -> Rows:
        """Reserve `count` new positions in each slot and describe where they go (see the module docstring)."""
        starts = [self.lengths[s] for s in slots]
        for s, start in zip(slots, starts):
            if start + count > self.budgets[s]:
                raise RuntimeError(f"KV cache overflow: slot {s} needs {start + count} positions, its budget is "
                                   f"{self.budgets[s]}")
        if self.window is not None:
            return self._ring_rows(slots, starts, count)
        end = max(starts) + count
        if end > self.capacity:
            live = max(self.budgets)
            self._allocate(len(self.budgets), min(live, max(end, 2 * self.capacity, INITIAL_CAPACITY)))
        consecutive = slots == list(range(slots[0], slots[0] + len(slots)))
        index = slice(slots[0], slots[0] + len(slots)) if consecutive else torch.tensor(slots, device=self.device)
        positions = slot_ids = mask = None
        if len(slots) > 1:
            positions = torch.tensor(starts, device=self.device)
            slot_ids = index if torch.is_tensor(index) else torch.tensor(slots, device=self.device)
        if count == 1 and len(set(starts)) > 1:  # ragged decode: row b sees keys 0..starts[b]
            mask = (torch.arange(end, device=self.device) <= positions[:, None])[:, None, None]
        elif count > 1 and (len(slots) > 1 or starts[0] > 0):  # continuing a prefill: query i sees 0..start+i
            if len(slots) > 1:
                raise ValueError("a prefill continues one sequence at a time")
            mask = torch.ones(count, end, dtype=torch.bool, device=self.device).tril(starts[0])
        return Rows(slots, starts, count, index, positions, slot_ids, mask, end)

    def write(self, layer: int, rows: Rows, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, K, T, D] at the rows' new positions; return the keys/values they see [B, K, L, D]."""
        if rows.cells is not None:
            return self._ring_write(layer, rows, k, v)
        keys, values = self.k[layer], self.v[layer]
        if rows.positions is None:  # one row: its slot's [1, K, capacity, D] views, as few tensor ops as possible
            slot_k, slot_v = self._slot_views[layer][rows.slots[0]]
            start, end = rows.starts[0], rows.end
            slot_k[:, :, start:end] = k
            slot_v[:, :, start:end] = v
            return slot_k[:, :, :end], slot_v[:, :, :end]
        keys[rows.slot_ids, :, rows.positions] = k[:, :, 0]  # several rows of one new position each
        values[rows.slot_ids, :, rows.positions] = v[:, :, 0]
        return keys[rows.index, :, :rows.end], values[rows.index, :, :rows.end]

    def commit(self, rows: Rows) -> None:
        for s, start in zip(rows.slots, rows.starts):
            self.lengths[s] = start + rows.count

    def reserve(self, count: int) -> None:
        """With a window: grow the ring now so that calls of up to `count` positions fit (`rows` grows it too,
        but growing moves the cells, so reserve before taking the Rows of several calls that run together)."""
        if self.window is not None and self.window - 1 + count > self.capacity:
            old_k, old_v, old_capacity = self.k, self.v, self.capacity
            capacity = self.window - 1 + count
            self._allocate(len(self.budgets), capacity)
            for s, n in enumerate(self.lengths):  # the positions later queries can still see, to their new cells
                if not (self.budgets[s] and n):
                    continue
                kept = torch.arange(max(0, n - self.window + 1), n, device=self.device)
                for new, old in ((self.k, old_k), (self.v, old_v)):
                    for layer in range(self.n_layers):
                        new[layer][s][:, kept % capacity] = old[layer][s][:, kept % old_capacity]

    def _ring_rows(self, slots: list[int], starts: list[int], count: int) -> Rows:
        self.reserve(count)
        window, capacity = self.window, self.capacity
        consecutive = slots == list(range(slots[0], slots[0] + len(slots)))
        slot_ids = None if len(slots) == 1 else torch.tensor(slots, device=self.device)
        index = slice(slots[0], slots[0] + len(slots)) if consecutive else slot_ids
        if len(slots) == 1:
            new = torch.arange(starts[0], starts[0] + count, device=self.device)[None]  # [1, T] positions written
        else:
            new = torch.tensor(starts, device=self.device)[:, None] + torch.arange(count, device=self.device)
        end, mask = capacity, None
        if len(slots) == 1 and count == 1 and starts[0] < window:  # not wrapped yet: the cells so far, all seen
            end = starts[0] + 1
        elif not (count == 1 and capacity <= window and min(starts) + 1 >= capacity):
            last = new[:, -1:]  # [B, 1]
            held = last - (last - torch.arange(capacity, device=self.device)) % capacity  # [B, L] each cell's
            q, p = new[:, :, None], held[:, None, :]                                     # position (< 0: none)
            mask = ((p >= 0) & (p <= q) & (p > q - window))[:, None]  # [B, 1, T, L]
        return Rows(slots, starts, count, index, new, slot_ids, mask, end, new % capacity)

    def _ring_write(self, layer: int, rows: Rows, k: torch.Tensor,
                    v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(rows.slots) == 1:
            slot_k, slot_v = self._slot_views[layer][rows.slots[0]]
            slot_k.index_copy_(2, rows.cells[0], k)
            slot_v.index_copy_(2, rows.cells[0], v)
            return slot_k[:, :, :rows.end], slot_v[:, :, :rows.end]
        keys, values = self.k[layer], self.v[layer]
        keys[rows.slot_ids[:, None], :, rows.cells] = k.transpose(1, 2)  # [B, T, K, D] into [B, T] cells
        values[rows.slot_ids[:, None], :, rows.cells] = v.transpose(1, 2)
        return keys[rows.index], values[rows.index]

    def _allocate(self, slots: int, capacity: int) -> None:
        """Grow to `slots` x `capacity`, keeping what is stored."""
        old = len(self.budgets)
        shape = (slots, self.shape[0], capacity, self.shape[1])
        grown_k, grown_v = [], []
        for i in range(self.n_layers):
            k = torch.zeros(shape, dtype=self.dtype, device=self.device)
            v = torch.zeros(shape, dtype=self.dtype, device=self.device)
            if self.k:
                keep = min(self.capacity, capacity)
                k[:old, :, :keep], v[:old, :, :keep] = self.k[i][:, :, :keep], self.v[i][:, :, :keep]
            grown_k.append(k)
            grown_v.append(v)
        self.k, self.v = grown_k, grown_v
        self._slot_views = [list(zip(k.split(1), v.split(1))) for k, v in zip(grown_k, grown_v)]  # [1, K, C, D]
        self.lengths += [0] * (slots - old)
        self.budgets += [0] * (slots - old)
