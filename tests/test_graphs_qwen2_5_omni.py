"""qwen2_5_omni end to end, through `omnigraph run` and through load_graph + LocalExecutor, against
transformers' generate on the same checkpoint (tiny25 as `omnigraph make-checkpoint` writes it, and a second
configuration through overrides; float32, greedy on every stage): identical thinker tokens and codec codes,
and with `token2wav.seed=S` and the same noise in the oracle, the waveform within 1e-4.

The oracle runs with the documented workaround for the transformers 5.23 talker-mask bug (reference
qwen2.5-omni.md section 6.6), so it takes the intended (masked) path our Talker implements.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
import torch

from omnigraph.cli import main
from omnigraph.nodes.qwen2_5.checkpoint_writer import write_checkpoint
from omnigraph.runtime.errors import NodeFailed, UserError

MEDIA = Path(__file__).parent / "fixtures" / "media"
SPEECH, PICTURE = MEDIA / "speech.wav", MEDIA / "picture.png"
IM_START, IM_END, SYSTEM, USER, ASSISTANT, NL = 151644, 151645, 8948, 872, 77091, 198
AUDIO_BOS, AUDIO, AUDIO_EOS, VISION_BOS, IMAGE, VISION_EOS = 151647, 151646, 151648, 151652, 151655, 151653
CODEC_EOS = (8292, 8294)
THINKER_TOKENS, TALKER_TOKENS, NOISE_SEED = 8, 24, 7
# tests/oracle25.py's VARIANT as preset overrides: other head_dim, GQA ratio, mrope sections, audio window,
# vision windows, talker width, DiT depth/heads and BigVGAN rates.
VARIANT25 = {
    "thinker_config.audio_config": dict(d_model=48, encoder_attention_heads=3, encoder_ffn_dim=96, encoder_layers=3,
                                        output_dim=96, n_window=50),
    "thinker_config.vision_config": dict(depth=3, hidden_size=48, num_heads=3, intermediate_size=80, window_size=56,
                                         fullatt_block_indexes=[2], out_hidden_size=96),
    "thinker_config.text_config": dict(hidden_size=96, intermediate_size=160, num_hidden_layers=3,
                                       num_attention_heads=6, num_key_value_heads=2, mrope_section=[2, 2, 4]),
    "talker_config": dict(embedding_size=96, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                          num_attention_heads=6, num_key_value_heads=3, head_dim=8, mrope_section=[1, 1, 2]),
    "token2wav_config.dit_config": dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=3, head_dim=16,
                                        look_ahead_layers=[0], look_backward_layers=[1], block_size=16),
    "token2wav_config.bigvgan_config": dict(upsample_initial_channel=96, upsample_rates=[5, 4, 3, 2, 2, 2],
                                            upsample_kernel_sizes=[11, 8, 6, 4, 4, 4]),
}
CONFIGS = {"tiny25": None, "variant": VARIANT25}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def case(request, tmp_path_factory):
    """(checkpoint folder, transformers model loaded from it)."""
    from transformers import Qwen2_5OmniForConditionalGeneration

    path = write_checkpoint(tmp_path_factory.mktemp(request.param), "tiny25", seed=5,
                            overrides=CONFIGS[request.param])
    model = Qwen2_5OmniForConditionalGeneration.from_pretrained(path, torch_dtype=torch.float32,
                                                                attn_implementation="eager")
    return path, model.eval()


def audio_tokens(frames: int) -> int:
    """Reference section 1: <|AUDIO|> count for `frames` valid mel frames."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def media_inputs(checkpoint: Path) -> dict:
    """The processor's inputs for SPEECH and PICTURE (WhisperFeatureExtractor, Qwen2VLImageProcessor), from the
    checkpoint's preprocessor_config.json."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessor, WhisperFeatureExtractor

    pre = json.loads((checkpoint / "preprocessor_config.json").read_text())
    extractor = WhisperFeatureExtractor(**{k: pre[k] for k in ("feature_size", "sampling_rate", "hop_length",
                                                                "n_fft", "chunk_length")})
    wave, _ = librosa.load(SPEECH, sr=16000, mono=True)
    features = extractor([wave.astype(np.float32)], sampling_rate=16000, padding="max_length",
                         return_attention_mask=True, return_tensors="pt")
    images = Qwen2VLImageProcessor(**{k: pre[k] for k in ("patch_size", "temporal_patch_size", "merge_size",
                                                          "min_pixels", "max_pixels", "image_mean", "image_std")})
    pixels = images(images=[Image.open(PICTURE).convert("RGB")], return_tensors="pt")
    return {"input_features": features["input_features"], "feature_attention_mask": features["attention_mask"],
            "thinker_pixel_values": pixels["pixel_values"], "image_grid_thw": pixels["image_grid_thw"]}


@contextlib.contextmanager
def oracle_patches(model, noise_seed: int, captured: dict):
    """The section 6.6 workaround (the Talker keeps its all-ones mask), the ODE noise drawn from
    torch.manual_seed(noise_seed) (what our token2wav draws from its own CPU generator), and a spy on the
    Talker's generated ids."""
    talker, dit = model.talker, model.token2wav.code2wav_dit_model
    prepare, generate, sample = talker.prepare_inputs_for_generation, talker.generate, dit.sample

    def prepare_with_mask(input_ids, inputs_embeds=None, **kwargs):
        out = prepare(input_ids, inputs_embeds=inputs_embeds, **kwargs)
        if out.get("attention_mask") is None:
            cache = out.get("past_key_values")
            past = 0 if cache is None else cache.get_seq_length()
            current = (out["inputs_embeds"] if out.get("inputs_embeds") is not None else out["input_ids"]).shape[1]
            out["attention_mask"] = torch.ones(input_ids.shape[0], past + current, dtype=torch.long)
        return out

    def spy_generate(*args, **kwargs):
        captured["talker"] = out = generate(*args, **kwargs)
        captured["prompt_length"] = kwargs["input_ids"].shape[1]
        return out

    def seeded_sample(*args, **kwargs):
        torch.manual_seed(noise_seed)
        return sample(*args, **kwargs)

    talker.prepare_inputs_for_generation, talker.generate, dit.sample = prepare_with_mask, spy_generate, seeded_sample
    try:
        yield
    finally:
        del talker.prepare_inputs_for_generation, talker.generate, dit.sample


def reference(model, checkpoint: Path, prompt: list[int],
              speaker: str = "Chelsie") -> tuple[list[int], list[int], torch.Tensor]:
    """transformers' greedy generate -> (thinker ids, codec ids until the first EOS, waveform [N])."""
    ids = torch.tensor([prompt])
    captured: dict = {}
    with oracle_patches(model, NOISE_SEED, captured), torch.no_grad():
        sequences, wav = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), speaker=speaker,
                                        thinker_do_sample=False, talker_do_sample=False,
                                        thinker_max_new_tokens=THINKER_TOKENS, talker_max_new_tokens=TALKER_TOKENS,
                                        **media_inputs(checkpoint))
    generated = captured["talker"][0, captured["prompt_length"]:].tolist()
    codes = generated[:next((i for i, c in enumerate(generated) if c in CODEC_EOS), len(generated))]
    return sequences[0, ids.shape[1]:].tolist(), codes, wav.reshape(-1).float()


def check_prompt(prompt: list[int], checkpoint: Path) -> None:
    """System turn, then the audio, the image and the text, as the Qwen2.5-Omni processor lays them out."""
    features = media_inputs(checkpoint)
    grid = features["image_grid_thw"][0]
    user = prompt.index(USER) - 1
    assert prompt[:3] == [IM_START, SYSTEM, NL] and prompt[user - 2:user] == [IM_END, NL]
    n_audio, n_image = audio_tokens(int(features["feature_attention_mask"].sum())), int(grid.prod()) // 4
    assert prompt[user:user + 4] == [IM_START, USER, NL, AUDIO_BOS]
    media = prompt[user + 3:user + 3 + n_audio + n_image + 4]
    assert media == [AUDIO_BOS, *[AUDIO] * n_audio, AUDIO_EOS, VISION_BOS, *[IMAGE] * n_image, VISION_EOS]
    assert prompt[-5:] == [IM_END, NL, IM_START, ASSISTANT, NL]


def test_cli_run_matches_transformers_generate(case, tmp_path) -> None:
    checkpoint, model = case
    out = tmp_path / "out"
    code = main(["run", "qwen2_5_omni", "--checkpoint", str(checkpoint), "--input", "text=Describe both.",
                 "--input", f"audio={SPEECH}", "--input", f"image={PICTURE}", "--greedy",
                 "--set", f"thinker.max_new_tokens={THINKER_TOKENS}", "--set", f"talker.max_codes={TALKER_TOKENS}",
                 "--set", f"token2wav.seed={NOISE_SEED}", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    check_prompt(result["prompt_token_ids"], checkpoint)
    tokens, codes, wav = reference(model, checkpoint, result["prompt_token_ids"])
    assert result["thinker_token_ids"] == tokens and len(set(tokens)) > 3
    assert result["codec_codes"] == codes and len(codes) > 0
    ours, rate = soundfile.read(out / "audio.wav", dtype="float32")
    assert rate == 24000
    torch.testing.assert_close(torch.from_numpy(ours), wav, atol=1e-4, rtol=1e-4)


def test_local_executor_matches_transformers_generate(case) -> None:
    from omnigraph.runtime.checkpoint import Checkpoint
    from omnigraph.runtime.executor_local import LocalExecutor
    from omnigraph.runtime.validate import load_graph

    checkpoint, model = case
    overrides = {("thinker", "greedy"): True, ("talker", "greedy"): True,
                 ("thinker", "max_new_tokens"): THINKER_TOKENS, ("talker", "max_codes"): TALKER_TOKENS,
                 ("token2wav", "seed"): NOISE_SEED}
    graph = load_graph("qwen2_5_omni", overrides=overrides)
    request = {"text": "What do you hear and see?", "audio": str(SPEECH), "image": str(PICTURE), "speaker": "Ethan"}
    with LocalExecutor(graph, checkpoint=Checkpoint.open(checkpoint)) as executor:
        result = executor.run(request)  # this run's voice, not the default one
        with pytest.raises(NodeFailed, match=r"unknown speaker 'ethan'.*case-sensitive.*Ethan") as failed:
            executor.run({**request, "speaker": "ethan"})
    assert isinstance(failed.value.error, UserError)
    prompt = list(result.outputs["prompt_token_ids"].ids)
    check_prompt(prompt, checkpoint)
    tokens, codes, wav = reference(model, checkpoint, prompt, speaker="Ethan")
    assert list(result.outputs["thinker_token_ids"].ids) == tokens
    assert list(result.outputs["codec_codes"].ids) == codes
    audio = torch.cat([chunk.samples for chunk in result.outputs["audio"]])
    torch.testing.assert_close(audio, wav, atol=1e-4, rtol=1e-4)



def test_captioner_matches_transformers_thinker_generate(case, tmp_path) -> None:
    checkpoint, model = case
    assert main(["run", "qwen2_5_omni_captioner", "--checkpoint", str(checkpoint), "--input", f"audio={SPEECH}",
                 "--greedy", "--max-new-tokens", str(THINKER_TOKENS), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    prompt, features = result["prompt_token_ids"], media_inputs(checkpoint)
    n_audio = audio_tokens(int(features["feature_attention_mask"].sum()))
    assert prompt.count(AUDIO) == n_audio and prompt[-3:] == [IM_START, ASSISTANT, NL]
    with torch.no_grad():
        generated = model.thinker.generate(
            input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            input_features=features["input_features"], feature_attention_mask=features["feature_attention_mask"],
            do_sample=False, max_new_tokens=THINKER_TOKENS)
    assert result["thinker_token_ids"] == generated[0, len(prompt):].tolist()

def test_a_checkpoint_of_another_family_is_a_located_user_error(tmp_path, capsys) -> None:
    from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint

    qwen3 = default_checkpoint()  # the tiny Qwen3-Omni one, written once per machine
    code = main(["run", "qwen2_5_omni", "--checkpoint", str(qwen3), "--input", "text=Hi", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{qwen3 / 'config.json'}: model_type is 'qwen3_omni_moe', and kind 'qwen2_5_thinker' reads" in err
    assert "node 'prompt'" not in err  # the tokenizer-only kind reads either family


def test_the_family_kinds_default_to_the_tiny25_checkpoint(tmp_path, monkeypatch) -> None:
    from omnigraph.nodes.qwen2_5.family import tiny_random_checkpoint
    from omnigraph.runtime.validate import load_graph

    graph = load_graph("qwen2_5_omni")
    builders = {node.cls.default_checkpoint for node in graph.nodes.values() if node.cls.needs_checkpoint} - {None}
    assert builders == {tiny_random_checkpoint}
    monkeypatch.setenv("OMNIGRAPH_CACHE", str(tmp_path))
    config = json.loads((tiny_random_checkpoint() / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni" and config["thinker_config"]["text_config"]["hidden_size"] == 64
