"""write_checkpoint: the released on-disk format (transformers loads it with no missing, unexpected or
mis-shaped keys), identical bytes for a seed, lively random weights, the cached default and the CLI."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors import safe_open

from omnigraph.cli import main
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import FORMAT_VERSION, default_checkpoint, write_checkpoint
from omnigraph.nodes.qwen3.checkpoint_keys import checkpoint_entries, expected_shapes

# Odd sizes: head_dim != hidden/heads, a dense thinker layer (decoder_sparse_step 2), a ResizeMLP width that
# differs from every hidden size, 3 deepstack levels, 5 code groups.
ODD = {"thinker_config.text_config": dict(head_dim=24, mrope_section=[4, 4, 4], num_attention_heads=3,
                                          num_key_value_heads=1, decoder_sparse_step=2, intermediate_size=40),
       "thinker_config.vision_config": dict(depth=4, deepstack_visual_indexes=[0, 2, 3], num_heads=2,
                                            intermediate_size=48),
       "thinker_config.audio_config": dict(encoder_layers=1, d_model=24, encoder_attention_heads=2,
                                           downsample_hidden_size=8, encoder_ffn_dim=40),
       "talker_config": dict(num_code_groups=5, accept_hidden_layer=3),
       "talker_config.text_config": dict(intermediate_size=48, head_dim=8, mrope_section=[2, 1, 1]),
       "talker_config.code_predictor_config": dict(num_code_groups=5, num_hidden_layers=1, head_dim=8),
       "code2wav_config": dict(num_quantizers=5, decoder_dim=48, num_attention_heads=2, num_key_value_heads=2,
                               upsampling_ratios=[2, 3])}


def load_hf(path, dtype=torch.float32):
    from transformers import Qwen3OmniMoeForConditionalGeneration

    model, info = Qwen3OmniMoeForConditionalGeneration.from_pretrained(
        path, output_loading_info=True, torch_dtype=dtype, attn_implementation="eager")
    return model.eval(), info


def assert_clean(info):
    for field in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info[field], (field, sorted(info[field])[:10])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("tiny"), "tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_hf(tiny):
    model, info = load_hf(tiny)
    return model, info


def test_tiny_loads_in_transformers_with_every_key(tiny, tiny_hf):
    model, info = tiny_hf
    assert_clean(info)
    text = model.config.thinker_config.text_config
    assert (text.hidden_size, text.head_dim, text.vocab_size) == (64, 32, 152064)
    assert text.rope_parameters["mrope_section"] == [4, 6, 6] and text.rope_parameters["rope_theta"] == 1e6
    assert model.config.talker_config.text_config.rope_parameters["mrope_section"] == [2, 3, 3]
    assert model.config.code2wav_config.rope_parameters["rope_theta"] == 10000.0
    files = {p.name for p in tiny.iterdir()}
    assert {"config.json", "generation_config.json", "preprocessor_config.json", "model.safetensors",
            "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "chat_template.json"} <= files
    assert sum(p.stat().st_size for p in tiny.iterdir()) < 100 * 2**20


def test_every_hf_tensor_equals_the_file(tiny, tiny_hf):
    """transformers re-initialises nothing: the loaded model holds exactly the written values."""
    model, _ = tiny_hf
    state = model.state_dict()
    same_name = 0
    with safe_open(str(tiny / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        for key in keys:
            if key in state:  # names transformers 5 keeps (lm_head, talker, code_predictor, code2wav)
                assert torch.equal(state[key], f.get_tensor(key)), key
                same_name += 1
        torch.testing.assert_close(state["thinker.model.language_model.embed_tokens.weight"],
                                   f.get_tensor("thinker.model.embed_tokens.weight"), rtol=0, atol=0)
        torch.testing.assert_close(state["thinker.model.audio_tower.conv_out.weight"],
                                   f.get_tensor("thinker.audio_tower.conv_out.weight"), rtol=0, atol=0)
    config = json.loads((tiny / "config.json").read_text())
    assert len(keys) == len(checkpoint_entries(config)) == 491 and same_name > 150


def test_odd_sizes_load_with_every_key(tmp_path):
    path = write_checkpoint(tmp_path / "odd", "tiny", seed=3, overrides=ODD)
    model, info = load_hf(path)
    assert_clean(info)
    assert model.config.thinker_config.text_config.head_dim == 24
    assert len(model.talker.code_predictor.lm_head) == 4


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny):
    again = write_checkpoint(tmp_path / "again", "tiny", seed=0)
    other = write_checkpoint(tmp_path / "other", "tiny", seed=1)
    with safe_open(str(tiny / "model.safetensors"), "pt") as a, \
            safe_open(str(again / "model.safetensors"), "pt") as b, \
            safe_open(str(other / "model.safetensors"), "pt") as c:
        assert set(a.keys()) == set(b.keys()) == set(c.keys())
        for key in a.keys():
            x, y, z = a.get_tensor(key), b.get_tensor(key), c.get_tensor(key)
            assert x.numpy().tobytes() == y.numpy().tobytes(), key
            if x.numel() > 1:
                assert not torch.equal(x, z), key
    for name in ("config.json", "tokenizer.json", "vocab.json", "merges.txt", "preprocessor_config.json"):
        assert (tiny / name).read_bytes() == (again / name).read_bytes(), name


def test_outputs_are_lively(tiny_hf):
    """Random weights at scales that give varied greedy tokens, spread logits and audible code2wav output."""
    model, _ = tiny_hf
    ids = torch.tensor([[151644, 872, 198, 9707, 11, 1246, 525, 498, 30, 151645, 198, 151644, 77091, 198]])
    with torch.no_grad():
        logits = model.thinker(input_ids=ids).logits[0, -1]
        assert 1.0 < logits.std().item() < 5.0
        out = model.thinker.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=30,
                                     do_sample=False)
        new = out[0, ids.shape[1]:].tolist()
        assert len(set(new)) >= 20, new
        features = torch.randn(128, 300, generator=torch.Generator().manual_seed(0)) * 0.5
        audio = model.thinker.model.audio_tower(features, feature_lens=torch.tensor([300])).last_hidden_state
        assert audio.shape == (39, 64) and 0.1 < audio.std().item() < 10
        codes = torch.randint(0, 2048, (1, 4, 25), generator=torch.Generator().manual_seed(0))
        wav = model.code2wav(codes)[0, 0]
    rms = wav.pow(2).mean().sqrt().item()
    assert wav.shape[0] == 1920 * 25 - 555
    assert 0.03 < rms < 0.7, rms
    assert (wav.abs() > 0.999).float().mean().item() < 0.01  # barely clipped
    spectrum = torch.fft.rfft(wav - wav.mean()).abs()
    assert spectrum[50:].sum() > 0.5 * spectrum.sum()  # not just a slow drift: energy above ~50 Hz


def test_our_loader_reads_every_stage(tiny):
    ckpt = Checkpoint.open(tiny)
    total = 0
    for prefix in ("thinker.audio_tower.", "thinker.visual.", "thinker.model.", "thinker.lm_head.", "talker.",
                   "code2wav."):
        tensors = ckpt.load(prefix, expected_shapes(ckpt.config, prefix))
        assert tensors and all(t.dtype == torch.float32 for t in tensors.values())
        total += len(tensors)
    assert total == len(ckpt.shard_of)
    predictor = expected_shapes(ckpt.config, "talker.code_predictor.")
    assert predictor["model.codec_embedding.2.weight"] == (2048, 32)
    assert "model.codec_embedding.3.weight" not in predictor  # G - 1 = 3 embeddings


def test_small_is_sharded_bf16_and_loads(tmp_path):
    path = write_checkpoint(tmp_path / "small", "small", seed=0)
    index = json.loads((path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and not (path / "model.safetensors").exists()
    size = sum((path / s).stat().st_size for s in shards)
    assert size < 460 * 2**20 and index["metadata"]["total_size"] <= size
    config = json.loads((path / "config.json").read_text())
    text = config["thinker_config"]["text_config"]
    assert (text["num_hidden_layers"], text["hidden_size"], text["num_experts"], text["num_experts_per_tok"],
            text["vocab_size"]) == (8, 512, 16, 4, 152064)
    ckpt = Checkpoint.open(path)
    shapes = expected_shapes(config, "thinker.audio_tower.")
    assert ckpt.load("thinker.audio_tower.", shapes, dtype=torch.float32)["proj2.weight"].shape == (512, 128)
    model, info = load_hf(path, dtype=torch.bfloat16)
    assert_clean(info)
    assert model.thinker.lm_head.weight.dtype == torch.bfloat16
    del model
    shutil.rmtree(path)  # 0.44 GB: do not keep it among pytest's retained temporary folders


def test_default_checkpoint_is_built_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIGRAPH_CACHE", str(tmp_path / "cache"))
    path = default_checkpoint()
    assert path == tmp_path / "cache" / f"tiny-v{FORMAT_VERSION}-seed0"
    assert (path / "model.safetensors").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert default_checkpoint() == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary folder left


def test_cli_make_checkpoint(tmp_path, capsys):
    target = tmp_path / "ck"
    assert main(["make-checkpoint", str(target), "--preset", "tiny", "--seed", "5"]) == 0
    assert "wrote tiny checkpoint" in capsys.readouterr().out
    assert Checkpoint.open(target).config["thinker_config"]["text_config"]["hidden_size"] == 64
    assert main(["make-checkpoint", str(target)]) == 2  # not empty: refused
    assert "not an empty folder" in capsys.readouterr().err
    assert os.listdir(target)


@pytest.mark.parametrize("preset, digest", [
    ("tiny", "821ef702fce7f0a646b0c61782152898d28a4425716290d5eed071f5ca0b4a95"),
    ("small", "3c4349c1604f9d36f3c3e39f6734d7387c74c86611822c893169e729f2341d54"),
])
def test_written_tensors_are_pinned_to_the_format_version(preset, digest):
    """The stages' key tables give the writer every key, shape and init, in order (which also decides the
    shards). A change to any of them changes the written bytes: bump FORMAT_VERSION and these digests together
    (cached default checkpoints are then rebuilt)."""
    from hashlib import sha256

    from omnigraph.nodes.qwen3.checkpoint_configs import preset_config

    entries = checkpoint_entries(preset_config(preset))
    assert (FORMAT_VERSION, sha256(repr(entries).encode()).hexdigest()) == (1, digest)
