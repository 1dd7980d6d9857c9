"""The bfloat16-screened vocabulary head: each row's k best logits are those of the float32 head (same ids, same
values), whatever the batch, also where bfloat16 cannot tell the best tokens apart; what it cannot serve is None."""
import pytest
import torch

from omnigraph.nodes.common.screened_head import MAX_CANDIDATES, ScreenedHead, screen_serves
from omnigraph.nodes.common.top_k import BLOCK, MIN_WIDTH

pytestmark = pytest.mark.skipif(not screen_serves(torch.zeros(1, MIN_WIDTH)),
                                reason="no oneDNN with native bfloat16 on this CPU")
C, V = 48, MIN_WIDTH + 3 * BLOCK + 37  # odd width, and a partial last block


def head(seed: int, close: int = 0) -> torch.Tensor:
    """A [C, V] head; `close` > 0: that many tokens (spread over the vocabulary) whose columns differ by less
    than bfloat16 resolves, so their screened logits tie while their float32 logits do not."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(C, V, generator=g) * 0.05
    if close:
        spots = torch.randperm(V, generator=g)[:close]
        w[:, spots] = 0.3 + torch.randn(C, close, generator=g) * 1e-4
    return w


def exact(h: ScreenedHead, x: torch.Tensor) -> torch.Tensor:
    """Every float32 logit, each by the dot product the screen uses for its candidates."""
    return torch.stack([(h.rows * row).sum(-1) for row in x])


@pytest.mark.parametrize("close", [0, 40])
def test_each_rows_k_best_logits_are_the_float32_heads(close):
    h = ScreenedHead(head(1, close))
    x = torch.randn(8, C, generator=torch.Generator().manual_seed(2)) * 4
    x[5] = h.rows[h.rows[:, 0].argmax()] * 30  # a row with one token far ahead
    ks = [1, 20, 3, 1, 50, 1, 20, 7]
    got, want = h(x, ks), exact(h, x)
    for b, k in enumerate(ks):
        assert torch.equal(got[b].topk(k).indices, want[b].topk(k).indices)
        assert torch.equal(got[b].topk(k).values, want[b].topk(k).values)
        assert torch.equal(got[b].argmax(), want[b].argmax())
    finite = torch.isfinite(got)
    assert torch.equal(got[finite], want[finite])  # every logit computed is the float32 one
    assert finite.sum() < 20 * sum(ks)  # and few are computed
    torch.testing.assert_close(want, x @ h.rows.t(), atol=1e-5, rtol=1e-6)  # and the head's own product


def test_a_rows_logits_do_not_depend_on_the_other_rows():
    h = ScreenedHead(head(3, close=30))
    x = torch.randn(6, C, generator=torch.Generator().manual_seed(4)) * 4
    batched = h(x, [20] * 6)
    for b in range(6):
        alone = h(x[b:b + 1], [20])
        assert torch.equal(alone[0], batched[b])


def test_what_the_screen_cannot_serve_is_none():
    h = ScreenedHead(head(5))
    x = torch.randn(2, C, generator=torch.Generator().manual_seed(6))
    assert h(x, [V // BLOCK + 1, 1]) is None  # more best logits than blocks
    bad = x.clone()
    bad[1, 3] = float("nan")
    assert h(bad, [1, 1]) is None
    flat = ScreenedHead(torch.full((C, V), 0.01))  # every token ties: more candidates than computed
    assert MAX_CANDIDATES < V and flat(x, [1, 1]) is None
