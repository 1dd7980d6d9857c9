"""The multi-sequence KV cache: memory follows what is written, slots come and go while others continue."""
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
