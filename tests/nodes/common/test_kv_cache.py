"""The multi-sequence KV cache: memory follows what is written, slots come and go while others continue; with a
window, a ring that shows each query its last W positions."""
import pytest
import torch

from omnigraph.nodes.common.kv_cache import INITIAL_CAPACITY, KVCache


def write(cache: KVCache, slots: list[int], k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = cache.rows(slots, k.shape[2])
    out = cache.write(0, rows, k, k + 1)
    cache.commit(rows)
    return out


def test_capacity_grows_with_what_is_written_not_with_the_budget():
    cache = KVCache(1, 2, 4, torch.float32, "cpu")
    slot = cache.add(10**12)  # a budget no memory could hold
    keys = torch.randn(1, 2, 600, 4)
    write(cache, [slot], keys[:, :, :100])
    assert cache.capacity == INITIAL_CAPACITY
    capacities = set()
    for t in range(100, 600):
        k, v = write(cache, [slot], keys[:, :, t:t + 1])
        capacities.add(cache.capacity)
    assert capacities == {256, 512, 1024}  # doubled: growth is amortised
    torch.testing.assert_close(k, keys, rtol=0, atol=0)
    torch.testing.assert_close(v, keys + 1, rtol=0, atol=0)


def test_capacity_never_passes_the_largest_live_budget():
    cache = KVCache(1, 1, 2, torch.float32, "cpu")
    slot = cache.add(300)
    for _ in range(300):
        write(cache, [slot], torch.zeros(1, 1, 1, 2))
    assert cache.capacity == 300


def test_slots_join_and_leave_while_others_keep_their_keys():
    cache = KVCache(1, 1, 2, torch.float32, "cpu")
    a, b = cache.add(8), cache.add(8)
    write(cache, [a], torch.full((1, 1, 3, 2), 1.0))
    write(cache, [b], torch.full((1, 1, 1, 2), 2.0))
    cache.free(a)
    c = cache.add(8)  # reuses a's slot, empty
    d = cache.add(8)  # more slots than ever before: the cache grows, b's keys stay
    assert c == a and cache.lengths[c] == 0 and len(cache.budgets) >= 3
    write(cache, [c], torch.full((1, 1, 1, 2), 3.0))
    write(cache, [d], torch.full((1, 1, 2, 2), 4.0))
    keys, _ = write(cache, [b, d, c], torch.stack([torch.full((1, 2), x) for x in (5.0, 6.0, 7.0)])[:, :, None])
    assert [cache.lengths[s] for s in (b, c, d)] == [2, 2, 3]
    valid = [keys[i, 0, :n, 0].tolist() for i, n in enumerate((2, 3, 2))]  # past its length a row's mask hides it
    assert valid == [[2, 5], [4, 4, 6], [3, 7]]


def visible_positions(cache: KVCache, slots: list[int], count: int) -> list[list[list[int]]]:
    """Write `count` positions per slot (key = 1000 * slot + position), -> per row, per query, the positions of
    the keys it sees."""
    rows = cache.rows(slots, count)
    k = torch.stack([torch.arange(s, s + count, dtype=torch.float32) + 1000 * slot
                     for slot, s in zip(slots, rows.starts)])[:, None, :, None].expand(-1, 1, -1, 2)
    keys, _ = cache.write(0, rows, k, k)
    cache.commit(rows)
    mask = torch.ones(len(slots), 1, count, keys.shape[2], dtype=torch.bool) if rows.mask is None else rows.mask
    return [[sorted(int(x) % 1000 for x in keys[b, 0, mask[b, 0, i], 0].tolist()) for i in range(count)]
            for b in range(len(slots))]


def window_of(last: int, window: int) -> list[int]:
    return list(range(max(0, last - window + 1), last + 1))


def test_prompts_starting_together_keep_their_own_lengths_and_budgets():
    cache = KVCache(1, 1, 2, torch.float32, "cpu")
    a, b = cache.add(3), cache.add(6)  # a's budget is below the padded width
    with pytest.raises(RuntimeError, match="slot 0 needs 4 positions"):
        cache.rows([a, b], [4, 5])
    keys = torch.randn(2, 1, 5, 2)  # right-padded: a's prompt is its first 2 positions
    rows = cache.rows([a, b], [2, 5])
    cache.write(0, rows, keys, keys)
    cache.commit(rows)
    assert [cache.lengths[a], cache.lengths[b]] == [2, 5]
    step = torch.randn(2, 1, 1, 2)
    k, _ = write(cache, [a, b], step)  # a ragged decode step: a's new key lands at position 2, over the padding
    torch.testing.assert_close(k[0, :, :3], torch.cat([keys[0, :, :2], step[0]], 1), rtol=0, atol=0)
    torch.testing.assert_close(k[1, :, :6], torch.cat([keys[1], step[1]], 1), rtol=0, atol=0)


def test_window_ring_shows_each_query_its_last_window_positions():
    W = 4
    cache = KVCache(1, 1, 2, torch.float32, "cpu", window=W)
    a, b, c = cache.add(10**9), cache.add(10**9), cache.add(10**9)
    done = {a: 0, b: 0, c: 0}
    schedule = [([a], 3), ([a, b], 1), ([b, c, a], 2), ([a, c], 1), ([c, a, b], 5), ([b], 1), ([a, b, c], 1)]
    for slots, count in schedule:  # rows at different lengths, several positions each, a capacity that grows
        seen = visible_positions(cache, slots, count)
        for row, slot in enumerate(slots):
            assert seen[row] == [window_of(done[slot] + i, W) for i in range(count)], (slots, count, slot)
            done[slot] += count
    assert cache.capacity == W - 1 + 5 and [cache.lengths[s] for s in (a, b, c)] == [13, 10, 9]
    cache.free(b)
    assert cache.add(10**9) == b and visible_positions(cache, [b], 2) == [[[0], [0, 1]]]  # nothing of the old b


def test_window_mask_is_left_out_once_every_cell_is_visible():
    cache = KVCache(2, 1, 2, torch.float32, "cpu", window=3)
    slots = [cache.add(10**9), cache.add(10**9)]
    masks = []
    for _ in range(5):
        rows = cache.rows(slots, 1)
        masks.append(rows.mask is None)
        cache.commit(rows)
    assert cache.capacity == 3 and masks == [False, False, True, True, True]
