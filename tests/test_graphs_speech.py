"""Speech out, end to end through `omnigraph run`: thinker tokens, codec codes and the waveform equal
transformers' generate(return_audio=True) on the same checkpoint (float32, eager, greedy on every stage);
streamed and whole decoding agree; a static_text source equals a Thinker that wrote the same text."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from oracle import generate_speech

from omnigraph.cli import main
from omnigraph.nodes.qwen3.checkpoint_writer import write_checkpoint

MEDIA = Path(__file__).parent / "fixtures" / "media"
SPEECH, PICTURE = MEDIA / "speech.wav", MEDIA / "picture.png"
THINKER_TOKENS, FRAMES = 12, 10


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("tiny"), "tiny", seed=11)


@pytest.fixture(scope="module")
def oracle(checkpoint):
    from oracle import load_model

    model = load_model(checkpoint)
    model.talker.config.audio_config = model.config.thinker_config.audio_config  # the v5.23 workaround
    return model


def run(graph: str, args: list[str], out: Path, tokens: int = THINKER_TOKENS) -> dict:
    assert main(["run", graph, *args, "--greedy", "--max-new-tokens", str(tokens),
                 "--max-frames", str(FRAMES), "--out", str(out)]) == 0
    return json.loads((out / "result.json").read_text())


def audio_inputs(path: Path) -> dict:
    import librosa
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                        chunk_length=300, return_attention_mask=True)
    wave, _ = librosa.load(path, sr=16000, mono=True)
    features = extractor([wave.astype(np.float32)], sampling_rate=16000, padding=True, truncation=False,
                         return_attention_mask=True, return_tensors="pt")
    return {"input_features": features["input_features"], "feature_attention_mask": features["attention_mask"]}


def check_against_oracle(result: dict, out: Path, oracle, **media) -> None:
    prompt = torch.tensor([result["prompt_token_ids"]])
    tokens, frames, wav = generate_speech(oracle, THINKER_TOKENS, FRAMES + 1, input_ids=prompt,
                                          attention_mask=torch.ones_like(prompt), **media)
    assert result["thinker_token_ids"] == tokens
    assert result["codec_codes"] == [list(f) for f in frames] and len(frames) > 0
    ours, rate = soundfile.read(out / "audio.wav", dtype="float32")
    assert rate == 24000 and soundfile.info(out / "audio.wav").subtype == "FLOAT"
    torch.testing.assert_close(torch.from_numpy(ours), wav.float(), atol=1e-4, rtol=1e-4)


def test_text_prompt(checkpoint, oracle, tmp_path) -> None:
    result = run("qwen3_omni", ["--checkpoint", str(checkpoint), "--input", "text=Tell me a story."], tmp_path)
    check_against_oracle(result, tmp_path, oracle)
    assert result["timings"]["first_output_s"]["audio"] < result["timings"]["wall_s"]


def test_audio_prompt(checkpoint, oracle, tmp_path) -> None:
    result = run("qwen3_omni", ["--checkpoint", str(checkpoint), "--input", f"audio={SPEECH}"], tmp_path)
    check_against_oracle(result, tmp_path, oracle, **audio_inputs(SPEECH))


def test_image_prompt(checkpoint, oracle, tmp_path) -> None:
    from PIL import Image

    from omnigraph.nodes.common.vision_preprocess import PreprocessArgs, preprocess_image
    from omnigraph.runtime.checkpoint import Checkpoint

    result = run("qwen3_omni", ["--checkpoint", str(checkpoint), "--input", f"image={PICTURE}",
                                "--input", "text=What is this?"], tmp_path)
    ckpt = Checkpoint.open(checkpoint)
    vision = ckpt.config["thinker_config"]["vision_config"]
    args = PreprocessArgs.from_files(ckpt.json_file("preprocessor_config.json"), None, vision["patch_size"],
                                     vision["temporal_patch_size"], vision["spatial_merge_size"])
    pixels, grid = preprocess_image(torch.from_numpy(np.asarray(Image.open(PICTURE).convert("RGB"))), args)
    check_against_oracle(result, tmp_path, oracle, pixel_values=pixels, image_grid_thw=torch.tensor([grid]))


def test_streaming_and_whole_decoding_agree(checkpoint, tmp_path) -> None:
    args = ["--checkpoint", str(checkpoint), "--input", "text=Count to three."]
    streamed = run("qwen3_omni", args, tmp_path / "s")
    whole = run("qwen3_omni", [*args, "--set", "code2wav.mode=whole"], tmp_path / "w")
    assert streamed["codec_codes"] == whole["codec_codes"]
    a, _ = soundfile.read(tmp_path / "s" / "audio.wav", dtype="float32")
    b, _ = soundfile.read(tmp_path / "w" / "audio.wav", dtype="float32")
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert streamed["timings"]["nodes"]["code2wav"]["items_out"]["audio"] == len(streamed["codec_codes"])


def test_static_text_equals_a_thinker_that_wrote_the_same_text(checkpoint, tmp_path) -> None:
    from omnigraph.nodes.qwen.tokenizer import QwenTokenizer

    tokenizer = QwenTokenizer.from_dir(checkpoint)
    for prompt in ("Hi!", "Hello.", "Tell me a joke.", "Why?"):  # a reply whose ids are what its text encodes to
        args = ["--checkpoint", str(checkpoint), "--input", f"text={prompt}"]
        spoken = run("qwen3_omni", args, tmp_path / "t", tokens=4)
        ids = spoken["thinker_token_ids"]
        ends = ids[-1] == 151645
        body = ids[:-1] if ends else ids
        text = tokenizer.decode(body)
        if tokenizer.encode(text, allow_special=False) == body:
            break
    else:
        pytest.fail("no random reply round-trips through text")
    swapped = tmp_path / "swapped.yaml"  # the README's swap: the Talker speaks a text source, not the Thinker
    swapped.write_text(f"""
extends: qwen3_omni
nodes:
  reply: {{kind: static_text, config: {{text: {json.dumps(text)}, end_of_reply: {str(ends).lower()}}}}}
disconnect: ["thinker.tokens -> talker.tokens"]
edges: ["reply.tokens -> talker.tokens"]
""")
    fed = run(str(swapped), args, tmp_path / "s", tokens=4)
    assert fed["codec_codes"] == spoken["codec_codes"]
    a, _ = soundfile.read(tmp_path / "t" / "audio.wav", dtype="float32")
    b, _ = soundfile.read(tmp_path / "s" / "audio.wav", dtype="float32")
    np.testing.assert_array_equal(a, b)
