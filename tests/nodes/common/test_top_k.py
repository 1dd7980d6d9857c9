"""top_k: torch.topk of wide rows through their block maxima, the same values and ids in every case."""
import pytest
import torch

from omnigraph.nodes.common.top_k import BLOCK, top_k


def assert_topk(x: torch.Tensor, k: int) -> None:
    values, ids = top_k(x, k)
    want = x.topk(k, dim=-1)
    torch.testing.assert_close(values, want.values, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(ids, want.indices)


@pytest.mark.parametrize("rows,width,k", [(1, 152064, 20), (8, 152064, 20), (3, 152064 - 37, 50), (5, 9000, 1),
                                          (2, 1000, 20)])
def test_the_k_best_of_random_rows_are_torch_topks(rows, width, k):
    torch.manual_seed(rows + k)
    assert_topk(torch.randn(rows, width) * 5, k)


def test_the_best_values_in_few_blocks_and_at_the_end_are_found():
    torch.manual_seed(0)
    x = torch.randn(4, 20 * BLOCK + 5)
    x[0, 3 * BLOCK:3 * BLOCK + 30] += 100  # all the best in one block
    x[1, -5:] += 100  # the best past the last whole block
    x[2, ::BLOCK] += 100  # one of the best in every block
    assert_topk(x, 20)


def test_ties_nan_and_infinities_give_torch_topks_answer():
    torch.manual_seed(1)
    x = torch.randn(6, 100 * BLOCK)
    x[0, [5, 900, 4000]] = 50.0  # a tie among the best
    x[1, :30] = 40.0 + torch.arange(30.0)  # x[1, 10] is the 20th best ...
    x[1, 7000] = x[1, 10]  # ... and ties with a value in another block
    x[2, 3] = float("nan")
    x[3] = float("-inf")
    x[3, :5] = 1.0  # fewer finite values than k
    x[4, 77] = float("inf")
    x[5, BLOCK * torch.arange(25)] = 30.0  # block maxima tied at the k-th
    assert_topk(x, 20)
