"""audio_encoder (AuT) against transformers' audio tower, loaded from saved tiny checkpoints through our loader."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from checkpoint_edits import with_config_edit
from oracle import build_model, save_checkpoint
from random_weights import randomize_

from omnigraph.nodes.audio_encoder.model import AudioEncoderArgs, audio_tokens
from omnigraph.nodes.audio_encoder.node import AudioEncoderNode
from omnigraph.runtime.checkpoint import Checkpoint, CheckpointError
from omnigraph.runtime.errors import UserError
from omnigraph.nodes.common.media_payloads import AudioEmbeddings, MelFeatures

TOL = dict(atol=1e-5, rtol=1e-5)  # max abs diff seen: 1.8e-6 on outputs of size ~2-3
SMALL_VOCAB = {"thinker_config.text_config": {"vocab_size": 512}}  # the audio tower does not need the real ids
CONFIGS = {
    "tiny": {},
    "wide": dict(d_model=48, encoder_attention_heads=6, encoder_layers=3, encoder_ffn_dim=80),
    # 80 mel bins (conv freq 10), head_dim 20, window 39 tokens instead of 104
    "narrow": dict(downsample_hidden_size=8, d_model=40, encoder_attention_heads=2, encoder_ffn_dim=56,
                   output_dim=64, n_window_infer=300, num_mel_bins=80),
}


def build_checkpoint(path, audio_overrides: dict, seed: int = 0):
    model = build_model({**SMALL_VOCAB, "thinker_config.audio_config": audio_overrides}, seed=seed)
    tower = model.thinker.model.audio_tower
    randomize_(tower, seed)
    save_checkpoint(model, path)
    return tower


def load_node(path, **config) -> AudioEncoderNode:
    node = AudioEncoderNode(AudioEncoderNode.Config(**config))
    node.load("cpu", Checkpoint.open(path))
    return node


def oracle(tower, features: list[torch.Tensor]) -> torch.Tensor:
    """The tower takes the valid frames of all clips concatenated [M, sum L] plus the frames per clip."""
    with torch.no_grad():
        lengths = torch.tensor([f.shape[-1] for f in features])
        return tower(torch.cat(features, dim=1), feature_lens=lengths).last_hidden_state


@pytest.fixture(scope="module", params=list(CONFIGS))
def encoder(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(f"aut_{request.param}")
    tower = build_checkpoint(path, CONFIGS[request.param])
    return load_node(path), tower


@pytest.mark.parametrize("frames", [
    [130],                 # 1.3 s: one full chunk and a 30-frame chunk
    [950],                 # 9.5 s: 124 tokens, windows of 104 + 20 (39 * 3 + 7 with n_window_infer 300)
    [1234, 250],           # two clips of different lengths in one call
    [40],                  # shorter than one chunk
    [800],                 # exactly one window: no padding mask
    [99, 100, 101, 1001],  # chunk-boundary lengths
])
def test_matches_oracle(encoder, frames):
    node, tower = encoder
    g = torch.Generator().manual_seed(sum(frames))
    features = tuple(torch.randn(node.args.num_mel_bins, n, generator=g) for n in frames)
    out = node.process(MelFeatures(features))["audio"]
    ref = oracle(tower, list(features))
    assert isinstance(out, AudioEmbeddings)
    assert out.tokens == tuple(audio_tokens(n) for n in frames)
    assert out.embeddings.shape == (sum(out.tokens), node.args.output_dim) == ref.shape
    torch.testing.assert_close(out.embeddings, ref, **TOL)


def test_token_count_formula():
    def reference_count(frames: int) -> int:  # the processor's placeholder count (reference section 1)
        r = frames % 100
        f1 = (r - 1) // 2 + 1
        f2 = (f1 - 1) // 2 + 1
        return (f2 - 1) // 2 + 1 + 13 * (frames // 100)

    checked = {1: 1, 99: 13, 100: 13, 101: 14, 199: 26, 200: 26, 300: 39, 3000: 390}
    assert {n: audio_tokens(n) for n in checked} == checked
    assert all(audio_tokens(n) == reference_count(n) for n in range(1, 3001))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("aut_tiny")
    return path, build_checkpoint(path, {}, seed=1)


def test_bfloat16(tiny_checkpoint):
    path, tower = tiny_checkpoint
    node = load_node(path, dtype="bfloat16")
    features = (torch.randn(128, 321, generator=torch.Generator().manual_seed(0)),)
    out = node.process(MelFeatures(features))["audio"]
    ref = oracle(tower, list(features))
    assert out.embeddings.dtype == torch.bfloat16
    err = (out.embeddings.float() - ref).abs().max() / ref.abs().max()
    assert err < 0.05, f"bfloat16 relative error {err:.3g}"


def test_config_mismatch_names_key_and_shapes(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    bad = with_config_edit(path, tmp_path / "bad",
                           lambda c: c["thinker_config"]["audio_config"].update(encoder_ffn_dim=72))
    with pytest.raises(CheckpointError) as info:
        load_node(bad)
    message = str(info.value)
    assert "'thinker.audio_tower.layers.0.fc1.weight' in model.safetensors has shape [64, 32], expected [72, 32]" \
        in message
    assert "thinker.audio_tower.layers.1.fc2.weight" in message


def test_wrong_prefix_and_missing_checkpoint(tiny_checkpoint):
    path, _ = tiny_checkpoint
    node = AudioEncoderNode(weights="thinker.audio.")
    with pytest.raises(CheckpointError, match=r"missing \d+ tensor\(s\): thinker\.audio\.conv2d1\.bias"):
        node.load("cpu", Checkpoint.open(path))
    with pytest.raises(UserError, match="needs a checkpoint"):
        AudioEncoderNode().load("cpu", None)


def test_bad_input_and_config(tiny_checkpoint):
    path, _ = tiny_checkpoint
    node = load_node(path)
    with pytest.raises(UserError, match=r"audio clip 2 have shape \[80, 50\]; this audio encoder takes \[128, "):
        node.process(MelFeatures((torch.zeros(128, 50), torch.zeros(80, 50))))
    assert node.process(MelFeatures(())) == {}
    assert AudioEncoderArgs.from_hf_config({"audio_config": {"d_model": 40}}).d_model == 40  # a thinker config
    with pytest.raises(ValueError, match="n_window 25 is not supported"):
        AudioEncoderArgs.from_hf_config({"n_window": 25})
    with pytest.raises(ValueError, match="shorter than one chunk"):
        AudioEncoderArgs.from_hf_config({"thinker_config": {"audio_config": {"n_window_infer": 50}}})


GRAPH = """
name: audio-input
nodes:
  mel: {kind: mel_frontend}
  aut: {kind: audio_encoder, weights: "thinker.audio_tower."}
edges:
  - mel.mel -> aut.mel
inputs:
  prompt: mel.prompt
outputs:
  mel: mel.mel
  audio: aut.audio
"""


def test_graph_mel_then_encoder(tiny_checkpoint):
    import numpy as np
    import soundfile
    from transformers import WhisperFeatureExtractor

    from omnigraph.nodes.qwen.payloads import PromptTokens
    from omnigraph.runtime.payloads import Waveform
    from omnigraph.testing import graph_from_yaml, run_graph, run_node

    path, tower = tiny_checkpoint
    speech, rate = soundfile.read(Path(__file__).parents[2] / "fixtures" / "media" / "speech.wav", dtype="float32")
    t = np.arange(37000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * (200 * t + 1500 * t ** 2))).astype(np.float32)
    prompt = PromptTokens(torch.zeros(3, dtype=torch.long),
                          audios=(Waveform(torch.from_numpy(speech), rate), Waveform(torch.from_numpy(tone), 16000)))
    graph = graph_from_yaml(GRAPH)
    result = run_graph(graph, {"prompt": prompt}, checkpoint=path)

    fe = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                 chunk_length=300, return_attention_mask=True)
    batch = fe([speech, tone], sampling_rate=16000, padding=True, truncation=False, return_attention_mask=True,
               return_tensors="pt")
    frames = batch["attention_mask"].sum(-1).tolist()
    features = [batch["input_features"][i, :, :n] for i, n in enumerate(frames)]
    ref = oracle(tower, features)
    audio = result.outputs["audio"]
    assert [f.shape[-1] for f in result.outputs["mel"].features] == frames == [151, 231]
    assert audio.tokens == (20, 30)
    torch.testing.assert_close(audio.embeddings, ref, **TOL)

    alone = run_node("audio_encoder", {"mel": result.outputs["mel"]}, checkpoint=path)["audio"]
    torch.testing.assert_close(alone.embeddings, audio.embeddings, atol=0, rtol=0)

    empty = run_graph(graph, {"prompt": PromptTokens(torch.zeros(3, dtype=torch.long))}, checkpoint=path)
    assert empty.outputs == {}
    assert "was skipped" in empty.missing["audio"]
