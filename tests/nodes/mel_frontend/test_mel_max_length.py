"""mel_frontend with padding: max_length against transformers' WhisperFeatureExtractor called the way the
Qwen2.5-Omni processor calls it (every clip padded to n_samples): ceil(L / 160) frames per clip."""
from __future__ import annotations

import pytest
import torch
from held_batch import queued_together
from test_mel_frontend import TOL, chirp, frontend, prompt, speech


def reference(clips) -> list[torch.Tensor]:
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                 chunk_length=30, return_attention_mask=True)  # 30 s: still far past every clip
    out = fe(clips, sampling_rate=16000, padding="max_length", return_attention_mask=True, return_tensors="pt")
    return [out["input_features"][i, :, :n] for i, n in enumerate(out["attention_mask"].sum(-1).tolist())]


@pytest.mark.parametrize("lengths", [[32123, 16050], [16000, 161, 160 * 7, 4003, 24011], [1, 320], [48005]])
def test_max_length_matches_the_qwen2_5_processor(lengths):
    clips = [speech()[:n] if n == 24011 else chirp(n, seed=i) for i, n in enumerate(lengths)]
    mel = frontend({"padding": "max_length"}).process(prompt(*clips))["mel"]
    ref = reference(clips)
    assert [f.shape[-1] for f in mel.features] == [r.shape[-1] for r in ref] == [-(-n // 160) for n in lengths]
    for ours, theirs in zip(mel.features, ref):
        torch.testing.assert_close(ours, theirs, **TOL)


def test_max_length_prompts_batched_equal_each_alone():
    node = frontend({"padding": "max_length"})
    prompts = [prompt(chirp(n, seed=n)) if n else prompt(chirp(9000, seed=1), chirp(333, seed=2))
               for n in (32123, 0, 161, 48005)]
    alone = [node.logmel.prompts([tuple(a.samples for a in p.audios)], max_length=True)[0] for p in prompts]
    got, gate = queued_together(node._batcher, [lambda p=p: node.process(p)["mel"] for p in prompts])
    assert gate.sizes == [1, 3]
    for out, want in zip(got, alone):
        assert len(out.features) == len(want)
        for ours, theirs in zip(out.features, want):
            torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
