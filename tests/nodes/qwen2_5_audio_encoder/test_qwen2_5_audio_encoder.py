"""qwen2_5_audio_encoder against transformers' Qwen2.5-Omni audio tower, loaded from saved tiny checkpoints
(BASE and VARIANT of tests/oracle25.py) through our loader."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from held_batch import queued_together
from oracle25 import VARIANT, build_model, save_checkpoint

from omnigraph.nodes.qwen2_5_audio_encoder.model import audio_tokens
from omnigraph.nodes.qwen2_5_audio_encoder.node import Qwen25AudioEncoderNode
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.media_payloads import AudioEmbeddings, MelFeatures

TOL = dict(atol=1e-4, rtol=1e-4)  # the bound; max abs diff seen 1.4e-6 (outputs of scale ~4)
CONFIGS = {"base": {}, "variant": VARIANT}  # variant: d_model 48, 3 heads, 3 layers, n_window 50


def randomize_(module: torch.nn.Module, seed: int) -> None:
    """O(1)-scale random values everywhere: the default init leaves biases at 0 and norms at 1, which would
    hide mix-ups of biases and norm weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name or "ln_post" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * noise)
            elif p.ndim == 1:
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / p[0].numel() ** 0.5)


def load_node(path, **config) -> Qwen25AudioEncoderNode:
    node = Qwen25AudioEncoderNode(Qwen25AudioEncoderNode.Config(**config))
    node.load("cpu", Checkpoint.open(path))
    return node


def oracle(thinker, features: list[torch.Tensor]) -> torch.Tensor:
    """transformers' audio features for clips padded into one batch with their feature_attention_mask."""
    longest = max(f.shape[-1] for f in features)
    feats = torch.zeros(len(features), features[0].shape[0], longest)
    mask = torch.zeros(len(features), longest, dtype=torch.long)
    for i, f in enumerate(features):
        feats[i, :, :f.shape[-1]] = f
        mask[i, :f.shape[-1]] = 1
    with torch.no_grad():
        return thinker.get_audio_features(feats, feature_attention_mask=mask).last_hidden_state


@pytest.fixture(scope="module", params=list(CONFIGS))
def encoder(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"qwen25_audio_{request.param}")
    model = build_model(CONFIGS[request.param])
    randomize_(model.thinker.model.audio_tower, seed=3)
    save_checkpoint(model, path)
    return path, load_node(path), model.thinker


def mels(frames: list[int], bins: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(bins, n, generator=g) for n in frames)


@pytest.mark.parametrize("frames", [
    [450, 37, 200, 401, 2],  # full and partial chunks, a 2-frame clip (0 tokens), in one call
    [1],
    [199, 1000],
])
def test_matches_oracle(encoder, frames):
    _, node, thinker = encoder
    features = mels(frames, node.model.args.num_mel_bins, sum(frames))
    out = node.process(MelFeatures(features))["audio"]
    ref = oracle(thinker, list(features)) if sum(audio_tokens(n) for n in frames) else torch.zeros(0, 1)
    assert isinstance(out, AudioEmbeddings)
    assert out.tokens == tuple(audio_tokens(n) for n in frames)
    assert out.embeddings.shape[0] == sum(out.tokens) == ref.shape[0]
    if ref.shape[0]:
        torch.testing.assert_close(out.embeddings, ref, **TOL)


def test_token_count_is_the_processor_formula():
    checked = {1: 0, 2: 0, 3: 1, 5: 1, 99: 25, 100: 25, 101: 25, 199: 50, 200: 50, 201: 50, 399: 100,
               400: 100, 401: 100, 3000: 750}  # reference section 1
    assert {n: audio_tokens(n) for n in checked} == checked
    assert all(audio_tokens(n) == ((n - 1) // 2 + 1 - 2) // 2 + 1 for n in range(1, 3001))


def test_concurrent_prompts_batched_equal_each_alone(encoder):
    path, _, thinker = encoder
    node = load_node(path, max_batch=3)
    bins = node.model.args.num_mel_bins
    prompts = [mels(frames, bins, seed) for seed, frames in enumerate([[300], [130, 40], [99, 2, 401], [250],
                                                                      [64]])]
    bad = mels([50], bins - 8, 9)
    got, gate = queued_together(node._batcher, [lambda m=m: node.process(MelFeatures(m))["audio"]
                                                for m in [prompts[0], bad, *prompts[1:]]])
    assert gate.sizes == [1, 3, 1] and node._batcher.peak_batch == 3
    assert isinstance(got[1], UserError) and f"have shape [{bins - 8}, 50]" in str(got[1])
    for out, features in zip([got[0], *got[2:]], prompts):
        with torch.no_grad():  # alone: other matmul shapes, so equal up to rounding
            torch.testing.assert_close(out.embeddings, node.model(list(features))[0], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(out.embeddings, oracle(thinker, [f for f in features if f.shape[-1] > 2]),
                                   **TOL)


def test_bad_mel_input_names_the_clip_and_the_fix(encoder):
    _, node, _ = encoder
    bins = node.model.args.num_mel_bins
    for features, shape in (((torch.zeros(bins, 30), torch.zeros(80, 30)), "[80, 30]"),
                            ((torch.zeros(bins * 30),), f"[{bins * 30}]")):
        with pytest.raises(UserError) as info:
            node.process(MelFeatures(features))
        message = str(info.value)
        assert f"audio clip {len(features)} of {len(features)} have shape {shape}" in message
        assert f"takes [{bins}, frames]" in message and "qwen2_5_audio_encoder" in message


def test_unsupported_config_names_config_json(encoder, tmp_path):
    path, _, _ = encoder
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    config = json.loads((bad / "config.json").read_text())
    config["thinker_config"]["audio_config"]["encoder_attention_heads"] = 5
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"config.json: thinker_config.audio_config: d_model \d+ must be even "
                                        r"and a multiple of encoder_attention_heads 5"):
        load_node(bad)


def test_checkpoint_check_uses_the_key_table_and_names_mis_shaped_tensors(encoder, tmp_path):
    from omnigraph.nodes.qwen2_5_audio_encoder.weights import key_table
    from omnigraph.runtime.checkpoint_check import CheckpointProbe

    path, _, _ = encoder
    probe = CheckpointProbe.open(path)
    Qwen25AudioEncoderNode().check_checkpoint(probe)
    assert probe.problems == [] and len(probe.fitting) == len(key_table(probe.config).keys)
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    config = json.loads((bad / "config.json").read_text())
    config["thinker_config"]["audio_config"]["encoder_ffn_dim"] += 8
    (bad / "config.json").write_text(json.dumps(config))
    probe = CheckpointProbe.open(bad)
    Qwen25AudioEncoderNode().check_checkpoint(probe)
    assert any("'thinker.audio_tower.layers.0.fc1.weight' in model.safetensors has shape" in p
               for p in probe.problems), probe.problems


def test_waveforms_through_mel_frontend_max_length_match_the_processor_path(encoder):
    """Clips -> mel_frontend (padding: max_length) -> the encoder, through run_node, against transformers'
    WhisperFeatureExtractor as the Qwen2.5-Omni processor calls it -> get_audio_features."""
    from transformers import WhisperFeatureExtractor

    from omnigraph.runtime.media_payloads import PromptTokens, Waveform
    from omnigraph.testing import run_node

    path, _, thinker = encoder
    g = torch.Generator().manual_seed(5)
    clips = [0.3 * torch.randn(n, generator=g) for n in (48123, 8000, 32001)]
    p = PromptTokens(torch.zeros(1, dtype=torch.long), audios=tuple(Waveform(c, 16000) for c in clips))
    mel = run_node("mel_frontend", {"prompt": p}, {"padding": "max_length"}, checkpoint=path)["mel"]
    out = run_node("qwen2_5_audio_encoder", {"mel": mel}, checkpoint=path)["audio"]
    fe = WhisperFeatureExtractor(feature_size=128, chunk_length=30, return_attention_mask=True)
    ref = fe([c.numpy() for c in clips], sampling_rate=16000, padding="max_length", return_attention_mask=True,
             return_tensors="pt")
    mask = ref["attention_mask"]
    assert out.tokens == (75, 12, 50) == tuple(audio_tokens(n) for n in mask.sum(-1).tolist())
    with torch.no_grad():
        want = thinker.get_audio_features(ref["input_features"], feature_attention_mask=mask).last_hidden_state
    torch.testing.assert_close(out.embeddings, want, **TOL)


def test_bfloat16_and_no_checkpoint(encoder):
    from omnigraph.testing import run_node

    path, node, _ = encoder
    features = mels([321, 45], node.model.args.num_mel_bins, 0)
    want = node.process(MelFeatures(features))["audio"].embeddings
    got = load_node(path, dtype="bfloat16").process(MelFeatures(features))["audio"].embeddings
    assert got.dtype == torch.bfloat16
    assert (got.float() - want).abs().max() / want.abs().max() < 0.05
    with pytest.raises(UserError, match="needs a checkpoint"):
        run_node("qwen2_5_audio_encoder", {"mel": MelFeatures(features)})
