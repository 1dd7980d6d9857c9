"""Prompts of concurrent runs computed in one batched call: each prompt's features are those it gets alone (the
processor's for that prompt)."""
from __future__ import annotations

import numpy as np
import torch
from held_batch import queued_together
from test_mel_frontend import chirp, frontend, prompt, reference

from omnigraph.runtime.errors import UserError

PROMPTS = [  # clips per prompt, in samples: lengths near each other (reflection within n_fft / 2) and far apart
    [32000],
    [32100, 900],
    [160 * 7, 4003, 24011],
    [161_000],
    [201],
    [16050, 16050],
]


def clips_of(lengths: list[int], seed: int) -> list[np.ndarray]:
    return [chirp(n, f0=50 + 40 * i, seed=seed + i) for i, n in enumerate(lengths)]


def test_batched_prompts_equal_each_prompt_alone():
    node = frontend()
    clips = [clips_of(lengths, seed) for seed, lengths in enumerate(PROMPTS)]
    prompts = [prompt(*c) for c in clips]
    alone = [reference(c)[0] for c in clips]
    got, gate = queued_together(node._batcher, [lambda p=p: node.process(p)["mel"].features for p in prompts])
    assert gate.sizes == [1, len(PROMPTS) - 1] and node._batcher.peak_batch == len(PROMPTS) - 1
    for ours, theirs in zip(got, alone):
        assert [f.shape for f in ours] == [f.shape for f in theirs]
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # the batched call directly, with the first prompt too: the same features
    for ours, theirs in zip(node.logmel.prompts([[c.samples for c in p.audios] for p in prompts]), alone):
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_a_bad_prompt_fails_alone_and_max_batch_bounds_the_batches():
    node = frontend({"max_batch": 2})
    good = [prompt(*clips_of(lengths, seed)) for seed, lengths in enumerate(PROMPTS[:4])]
    bad = prompt(chirp(8000), rate=44100)
    calls = [lambda p=p: node.process(p)["mel"].features for p in [good[0], good[1], bad, good[2], good[3]]]
    got, gate = queued_together(node._batcher, calls)
    assert gate.sizes == [1, 2, 1] and node._batcher.peak_batch == 2  # the three good ones queued: 2, then 1
    assert isinstance(got[2], UserError) and "44100 Hz" in str(got[2])
    for ours, p in zip(got[:2] + got[3:], good):
        for a, b in zip(ours, reference([c.samples.numpy() for c in p.audios])[0]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
