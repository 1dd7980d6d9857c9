"""Next-token choice: greedy, filters, repetition penalty and seeded sampling."""
import pytest
import torch

from omnigraph.nodes.common.sampling import (SamplingParams, apply_repetition_penalty, best_read, filter_logits,
                                             make_generator, outside_nucleus, sample, sample_among_top_k,
                                             sample_rows)


def test_greedy_is_argmax():
    logits = torch.tensor([[0.1, 3.0, -1.0], [2.0, 0.0, 5.0]])
    assert sample(logits, SamplingParams(greedy=True)).tolist() == [1, 2]


def test_greedy_rows_apply_their_repetition_penalty_as_transformers_greedy_search_does():
    from transformers import RepetitionPenaltyLogitsProcessor

    torch.manual_seed(5)
    logits = torch.randn(3, 50)
    previous = [torch.randint(0, 50, (1, 12)) for _ in range(3)]
    previous[0][0, :4] = logits[0].argmax()  # the unpenalised best was seen: the penalty changes this row's pick
    params = [SamplingParams(greedy=True, repetition_penalty=1.8), SamplingParams(greedy=True),
              SamplingParams(temperature=0.9, top_k=5, repetition_penalty=1.3)]
    want = [int(RepetitionPenaltyLogitsProcessor(1.8)(previous[0], logits[0:1]).argmax()), int(logits[1].argmax())]
    assert want[0] != int(logits[0].argmax())
    generators = [None, None, make_generator(3)]
    assert sample_rows(logits, params, generators, previous).tolist()[:2] == want  # beside a sampled row
    assert sample_rows(logits[:2], params[:2], generators[:2], previous[:2]).tolist() == want  # greedy rows only
    assert best_read(params[0]) is None and best_read(params[1]) == 1  # the screened head reads every logit


def test_filters_keep_top_k_then_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, 0, 0.75)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, 0, 0.85)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_logits(logits, 0, 0.01)).tolist() == [[False, True, True, True]]


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


def test_seeded_sampling_is_reproducible_and_respects_filters():
    torch.manual_seed(0)
    logits = torch.randn(1, 50)
    params = SamplingParams(temperature=0.9, top_k=3, top_p=1.0)
    draw = lambda seed: [int(sample(logits, params, g)) for g in [make_generator(seed)] for _ in range(40)]  # noqa
    a, b = draw(7), draw(7)
    assert a == b and draw(8) != a
    assert set(a) <= set(logits.topk(3).indices[0].tolist()) and len(set(a)) > 1


def test_bad_sampling_settings_are_rejected():
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=1.5)


def test_sampling_among_the_top_k_keeps_the_filters_and_the_seed():
    torch.manual_seed(0)
    logits = torch.randn(1, 500)
    params = SamplingParams(temperature=0.9, top_k=6, top_p=0.7)
    draw = lambda seed: [int(sample_among_top_k(logits, params, g)) for g in [make_generator(seed)]  # noqa: E731
                         for _ in range(60)]
    a = draw(7)
    assert a == draw(7) and draw(8) != a
    kept = torch.isfinite(filter_logits(logits / 0.9, 6, 0.7))[0].nonzero()[:, 0].tolist()
    assert set(a) <= set(kept) and len(set(a)) > 1
    assert sample_among_top_k(logits, SamplingParams(greedy=True)).tolist() == [int(logits.argmax())]


def test_rows_with_their_own_generators_draw_as_each_alone():
    torch.manual_seed(1)
    logits = torch.randn(3, 500)
    params = SamplingParams(temperature=1.2, top_k=40, top_p=0.9)
    together, alone = [make_generator(s) for s in (1, 2, 3)], [make_generator(s) for s in (1, 2, 3)]
    for _ in range(20):
        batched = sample_among_top_k(logits, params, together).tolist()
        assert batched == [int(sample_among_top_k(logits[b:b + 1], params, alone[b])) for b in range(3)]



@pytest.mark.parametrize("params", [SamplingParams(temperature=0.9, top_k=50, top_p=0.8), SamplingParams(top_k=7),
                                    SamplingParams(temperature=1.1, top_p=0.6), SamplingParams(temperature=0.8)])
def test_the_batched_draw_among_the_top_k_is_torch_multinomials_draw(params):
    """sample_among_top_k's one batched draw (argmax(p / q), q ~ Exp(1) per row) picks what sample_rows'
    per-row torch.multinomial picks, and leaves each generator where multinomial leaves it."""
    torch.manual_seed(2)
    logits = torch.randn(5, 700) * 3
    batched, reference = [make_generator(s) for s in range(5)], [make_generator(s) for s in range(5)]
    for _ in range(25):
        assert (sample_among_top_k(logits, params, batched).tolist()
                == sample_rows(logits, [params] * 5, reference, [None] * 5).tolist())
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(batched, reference))

MIXED = [SamplingParams(greedy=True), SamplingParams(temperature=0.7, top_k=20, top_p=0.8),
         SamplingParams(temperature=1.3), SamplingParams(top_p=0.5), SamplingParams(top_k=3, repetition_penalty=1.5),
         SamplingParams(temperature=0.9, top_k=60, top_p=0.95)]


def test_each_row_of_a_batch_draws_what_it_draws_alone():
    torch.manual_seed(1)
    logits = torch.randn(len(MIXED), 500) * 3
    previous = [None, None, None, None, torch.tensor([[4, 9, 9]]), None]
    batched_gens = [make_generator(b) for b in range(len(MIXED))]
    alone_gens = [make_generator(b) for b in range(len(MIXED))]
    for _ in range(30):
        batched = sample_rows(logits, MIXED, batched_gens, previous).tolist()
        alone = [int(sample(logits[b:b + 1], p, g, previous[b])) for b, (p, g) in enumerate(zip(MIXED, alone_gens))]
        assert batched == alone
    assert batched[0] == int(logits[0].argmax())


def multinomial_row_by_row(logits, params, generators, previous) -> list[int]:
    """The reference: each row alone, its candidates (k best, or the sorted or whole vocabulary) drawn from with
    torch.multinomial."""
    out = []
    for b, (p, g) in enumerate(zip(params, generators)):
        x = logits[b:b + 1]
        if p.greedy:
            out.append(int(x.argmax()))
            continue
        if p.repetition_penalty != 1.0 and previous[b] is not None:
            x = apply_repetition_penalty(x, previous[b], p.repetition_penalty)
        x = (x / p.temperature)[0]
        values, ids = x.topk(p.top_k) if p.top_k else x.sort(descending=True) if p.top_p < 1.0 else (x, None)
        if p.top_p < 1.0:
            values = values.masked_fill(outside_nucleus(values, p.top_p), float("-inf"))
        pick = torch.multinomial(values.softmax(-1)[None], 1, generator=g)[0]
        out.append(int(pick if ids is None else ids[pick]))
    return out


@pytest.mark.parametrize("shared", [False, True], ids=["own generators", "one generator"])
def test_the_batched_draw_picks_what_torch_multinomial_picks_row_by_row(shared):
    """Rows with different settings (greedy, top-k of different k, nucleus only, unfiltered, a penalty) drawn
    together pick each row's torch.multinomial token and leave the generators where it leaves them; a generator
    shared by rows is drawn from in row order."""
    torch.manual_seed(3)
    params = MIXED + [SamplingParams(temperature=0.7, top_k=20, top_p=0.8), SamplingParams(top_k=3, top_p=0.3)]
    logits = torch.randn(len(params), 900) * 4
    previous = [None] * len(params)
    previous[4] = torch.tensor([[4, 9, 9]])
    n = 1 if shared else len(params)
    batched, reference = [make_generator(s) for s in range(n)], [make_generator(s) for s in range(n)]
    for _ in range(25):
        before = logits.clone()
        got = sample_rows(logits, params, batched * (len(params) // n), previous).tolist()
        assert got == multinomial_row_by_row(logits, params, reference * (len(params) // n), previous)
        assert torch.equal(logits, before)  # the caller's logits are not written
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(batched, reference))


def test_a_row_with_nan_logits_fails_as_torch_multinomial_does():
    logits = torch.randn(2, 50)
    logits[1, 7] = float("nan")
    with pytest.raises(RuntimeError, match="inf.*nan"):
        sample_rows(logits, [SamplingParams(top_k=5)] * 2, [make_generator(0)] * 2, [None] * 2)


def test_sampled_frequencies_follow_the_filtered_distribution():
    logits = torch.log(torch.tensor([[0.05, 0.4, 0.02, 0.25, 0.2, 0.08]])).repeat(3, 1)
    params = [SamplingParams(top_k=4), SamplingParams(top_p=0.8), SamplingParams(temperature=2.0, top_k=3, top_p=0.9)]
    generators = [make_generator(b) for b in range(3)]
    draws = torch.stack([sample_rows(logits, params, generators, [None] * 3) for _ in range(1000)])  # [N, 3]
    for b, p in enumerate(params):
        want = filter_logits(logits[b:b + 1] / p.temperature, p.top_k, p.top_p).softmax(-1)[0]
        got = torch.bincount(draws[:, b], minlength=6) / len(draws)
        assert torch.equal(got > 0, want > 0)  # exactly the kept tokens are drawn
        torch.testing.assert_close(got, want, atol=0.06, rtol=0)  # seeded: the same numbers every run
