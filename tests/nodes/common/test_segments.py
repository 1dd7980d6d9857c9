"""Attention within segments of a packed sequence: equal to attending each segment on its own, in groups of
similar length whose padding stays within the bound."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from omnigraph.nodes.common.segments import segment_attention, segment_groups, similar_size_groups


@pytest.mark.parametrize("lengths", [[7], [5, 5, 5], [1, 40, 3, 39, 12, 40, 2], [100, 1]])
@pytest.mark.parametrize("max_waste", [0.0, 0.25, 1e9])
def test_each_segment_attends_to_itself_only(lengths, max_waste):
    g = torch.Generator().manual_seed(len(lengths))
    q, k, v = (torch.randn(sum(lengths), 3, 8, generator=g) for _ in range(3))  # [N, H, K]
    got = segment_attention(q, k, v, segment_groups(lengths, "cpu", max_waste))
    want = torch.cat([F.scaled_dot_product_attention(*(t.transpose(0, 1) for t in parts)).transpose(0, 1)
                      for parts in zip(q.split(lengths), k.split(lengths), v.split(lengths))])
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_groups_bound_the_padding():
    sizes = [100, 1, 90, 3, 100, 50, 49, 2]
    groups = similar_size_groups(sizes, 0.25)
    assert sorted(i for group in groups for i in group) == list(range(len(sizes)))
    for group in groups:
        assert group == sorted(group)
        assert len(group) * max(sizes[i] for i in group) <= 1.25 * sum(sizes[i] for i in group)
    assert similar_size_groups(sizes, 1e9) == [list(range(len(sizes)))]
    assert similar_size_groups([4, 4, 4], 0.0) == [[0, 1, 2]]  # equal sizes always share a group
