"""Qwen2.5-Omni write_checkpoint: the released on-disk format (transformers loads it with no missing,
unexpected or mis-shaped keys, speakers included), identical bytes for a seed, tokenizer files with the
Qwen2.5-Omni special tokens, the sharded bfloat16 small25 and the CLI."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open

from oracle25 import VARIANT

from omnigraph.cli import main
from omnigraph.nodes.qwen2_5.checkpoint_writer import (FORMAT_VERSION, checkpoint_entries, default_checkpoint,
                                                       write_checkpoint)
from omnigraph.nodes.qwen2_5.special_tokens import SPECIAL_TOKENS


def preset_overrides(oracle_overrides: dict) -> dict:
    """tests/oracle25.py's overrides (transformers 5 `rope_parameters` paths) as preset overrides."""
    out: dict = {}
    for path, values in oracle_overrides.items():
        out.setdefault(path.removesuffix(".rope_parameters"), {}).update(values)
    return out


VARIANT25 = preset_overrides(VARIANT)


def load_hf(path, dtype=torch.float32):
    """transformers' model and its loading report (its own from_pretrained cannot give the report: it loads
    spk_dict.pt into what is then a tuple), then the speakers as its from_pretrained loads them."""
    from transformers import Qwen2_5OmniForConditionalGeneration as Omni

    model, info = super(Omni, Omni).from_pretrained(path, output_loading_info=True, torch_dtype=dtype,
                                                    attn_implementation="eager")
    model.load_speakers(path / "spk_dict.pt")
    return model.eval(), info


def assert_clean(info):
    for field in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info[field], (field, sorted(info[field])[:10])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("tiny25"), "tiny25", seed=0)


@pytest.fixture(scope="module")
def tiny_hf(tiny):
    return load_hf(tiny)


def test_tiny25_loads_in_transformers_with_every_key_and_speaker(tiny, tiny_hf):
    model, info = tiny_hf
    assert_clean(info)
    text = model.config.thinker_config.text_config
    assert (text.hidden_size, text.num_key_value_heads, text.vocab_size) == (64, 2, 152064)
    assert text.rope_parameters["mrope_section"] == [2, 3, 3] and text.rope_parameters["rope_theta"] == 1e6
    assert model.config.talker_config.rope_parameters["mrope_section"] == [2, 3, 3]
    assert model.config.token2wav_config.dit_config.rope_parameters["rope_theta"] == 10000.0
    assert model.config.thinker_config.vision_start_token_id == 151652
    assert sorted(model.speaker_map) == ["Chelsie", "Ethan"]
    chelsie = model.speaker_map["Chelsie"]
    assert chelsie["bos_token"] == 151870
    assert chelsie["cond"].shape == (1, 16) and chelsie["ref_mel"].shape == (1, 100, 80)
    files = {p.name for p in tiny.iterdir()}
    assert {"config.json", "generation_config.json", "preprocessor_config.json", "model.safetensors",
            "spk_dict.pt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
            "chat_template.json"} <= files
    assert sum(p.stat().st_size for p in tiny.iterdir()) < 110 * 2**20
    with safe_open(str(tiny / "model.safetensors"), "pt") as f:
        assert len(list(f.keys())) == len(checkpoint_entries(json.loads((tiny / "config.json").read_text())))
        torch.testing.assert_close(model.thinker.model.language_model.embed_tokens.weight,
                                   f.get_tensor("thinker.model.embed_tokens.weight"), rtol=0, atol=0)


def test_outputs_are_lively(tiny_hf):
    """Random weights at scales that give varied greedy tokens, spread logits and an audible, barely clipped
    waveform (not a constant at the clamp)."""
    model, _ = tiny_hf
    ids = torch.tensor([[151644, 872, 198, 9707, 11, 1246, 525, 498, 30, 151645, 198, 151644, 77091, 198]])
    with torch.no_grad():
        logits = model.thinker(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
        assert 0.5 < logits.std().item() < 5.0
        out = model.thinker.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                                     do_sample=False)
        assert len(set(out[0, ids.shape[1]:].tolist())) >= 15
        codes = torch.randint(0, 8192, (1, 40), generator=torch.Generator().manual_seed(0))
        speaker = model.speaker_map["Chelsie"]
        torch.manual_seed(0)
        wav = model.token2wav(codes, speaker["cond"], speaker["ref_mel"], num_steps=4).reshape(-1)
    rms = wav.pow(2).mean().sqrt().item()
    assert wav.shape[0] == 480 * 40 and 0.03 < rms < 0.7, rms
    assert (wav.abs() > 0.999).float().mean().item() < 0.01  # barely clipped
    spectrum = torch.fft.rfft(wav - wav.mean()).abs()
    assert spectrum[50:].sum() > 0.5 * spectrum.sum()  # not just a slow drift: energy above ~60 Hz


def test_variant_loads_with_every_key(tmp_path):
    path = write_checkpoint(tmp_path / "variant", "tiny25", seed=3, overrides=VARIANT25)
    model, info = load_hf(path)
    assert_clean(info)
    assert model.config.talker_config.head_dim == 8
    assert model.config.talker_config.rope_parameters["mrope_section"] == [1, 1, 2]
    assert model.config.token2wav_config.dit_config.num_hidden_layers == 3


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny):
    again = write_checkpoint(tmp_path / "again", "tiny25", seed=0)
    other = write_checkpoint(tmp_path / "other", "tiny25", seed=1)
    with safe_open(str(tiny / "model.safetensors"), "pt") as a, \
            safe_open(str(again / "model.safetensors"), "pt") as b, \
            safe_open(str(other / "model.safetensors"), "pt") as c:
        assert set(a.keys()) == set(b.keys()) == set(c.keys())
        for key in a.keys():
            x, y, z = a.get_tensor(key), b.get_tensor(key), c.get_tensor(key)
            assert x.numpy().tobytes() == y.numpy().tobytes(), key
            if x.numel() > 1:
                assert not torch.equal(x, z), key
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json", "spk_dict.pt"):
        assert (tiny / name).read_bytes() == (again / name).read_bytes(), name


def test_tokenizer_has_the_qwen2_5_special_tokens_and_template(tiny):
    from transformers import AutoTokenizer

    from omnigraph.nodes.qwen.tokenizer import QwenTokenizer

    hf, ours = AutoTokenizer.from_pretrained(tiny), QwenTokenizer.from_dir(tiny)
    ids = {content: token_id for token_id, content, _ in SPECIAL_TOKENS}
    assert (ids["<|AUDIO|>"], ids["<|audio_bos|>"], ids["<|audio_eos|>"]) == (151646, 151647, 151648)
    assert (ids["<|vision_bos|>"], ids["<|vision_eos|>"], ids["<|IMAGE|>"], ids["<|VIDEO|>"]) == \
        (151652, 151653, 151655, 151656)
    messages = [{"role": "user", "content": [{"type": "audio"}, {"type": "image"}, {"type": "text", "text": "Hi"}]}]
    rendered = ours.apply_chat_template(messages, add_generation_prompt=True)
    assert rendered == hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert rendered == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                        "<|audio_bos|><|AUDIO|><|audio_eos|><|vision_bos|><|IMAGE|><|vision_eos|>Hi<|im_end|>\n"
                        "<|im_start|>assistant\n")
    assert ours.encode(rendered) == hf.encode(rendered, add_special_tokens=False)
    assert ours.encode("<|AUDIO|><|VIDEO|>") == [151646, 151656]


def test_small25_is_sharded_bf16_with_float32_token2wav_and_loads(tmp_path):
    path = write_checkpoint(tmp_path / "small25", "small25", seed=0)
    index = json.loads((path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and not (path / "model.safetensors").exists()
    size = sum((path / s).stat().st_size for s in shards)
    assert 200 * 2**20 < size < 500 * 2**20 and index["metadata"]["total_size"] <= size
    text = json.loads((path / "config.json").read_text())["thinker_config"]["text_config"]
    assert (text["hidden_size"], text["num_hidden_layers"], text["vocab_size"]) == (512, 8, 152064)
    model, info = load_hf(path, dtype=torch.bfloat16)
    assert_clean(info)
    assert model.thinker.lm_head.weight.dtype == torch.bfloat16
    name = index["weight_map"]["token2wav.code2wav_dit_model.proj_out.weight"]
    with safe_open(str(path / name), "pt") as f:
        assert f.get_tensor("token2wav.code2wav_dit_model.proj_out.weight").dtype == torch.float32
    del model
    shutil.rmtree(path)  # 0.4 GB: do not keep it among pytest's retained temporary folders


def test_cli_make_checkpoint_tiny25(tmp_path, capsys):
    target = tmp_path / "ck"
    assert main(["make-checkpoint", str(target), "--preset", "tiny25", "--seed", "5"]) == 0
    assert "wrote tiny25 checkpoint" in capsys.readouterr().out
    config = json.loads((target / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni" and (target / "spk_dict.pt").is_file()


def test_default_checkpoint_is_built_once_beside_qwen3s(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIGRAPH_CACHE", str(tmp_path / "cache"))
    path = default_checkpoint()
    assert path == tmp_path / "cache" / f"tiny25-v{FORMAT_VERSION}-seed0" and (path / "spk_dict.pt").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert default_checkpoint() == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary folder left
