"""The packed vocabulary head: the product x @ weight, for one row exactly, for decode batches within float32
rounding (oneDNN where torch has it)."""
import torch

from omnigraph.nodes.common.packed_head import PackedHead


def test_packed_head_is_x_at_weight():
    torch.manual_seed(0)
    weight = torch.randn(64, 3000) * 0.05
    head = PackedHead(weight)
    for rows in (1, 2, 3, 4, 16, 20):  # 2 and 3 rows: padded to 4
        x = torch.randn(rows, 64)
        got = head(x)
        assert got.shape == (rows, 3000)
        torch.testing.assert_close(got, x @ weight, atol=1e-5, rtol=1e-5)
    one = torch.randn(1, 64)
    assert torch.equal(head(one), one @ weight)
    assert torch.equal(PackedHead(weight.double())(x.double()), x.double() @ weight.double())  # no oneDNN path


def test_pack_makes_the_packed_copy_before_the_first_batch():
    weight = torch.randn(64, 3000)
    head = PackedHead(weight)
    head.pack()
    assert (head.packed is not None) == head.uses_onednn
    packed = head.packed
    head(torch.randn(5, 64))
    assert head.packed is packed  # packed once
