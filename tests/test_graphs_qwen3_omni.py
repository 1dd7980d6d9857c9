"""The Qwen3-Omni graphs end to end, through `omnigraph run`, against transformers generating from the same
checkpoint (the tiny checkpoint `omnigraph make-checkpoint` writes; float32, eager, greedy)."""
from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from omnigraph.cli import main
from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint

MEDIA = Path(__file__).parent / "fixtures" / "media"
SPEECH, PICTURE = MEDIA / "speech.wav", MEDIA / "picture.png"
IM_START, IM_END, SYSTEM, USER, ASSISTANT, NEWLINE = 151644, 151645, 8948, 872, 77091, 198
AUDIO_START, AUDIO_PAD, AUDIO_END = 151669, 151675, 151670


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return default_checkpoint("tiny", seed=3)  # written once, shared with tests/nodes/thinker/test_batching.py


@pytest.fixture(scope="module")
def oracle(checkpoint):
    from oracle import load_model

    return load_model(checkpoint)


def run(args: list[str], out: Path) -> dict:
    speech = ["--max-frames", "8"] if args[0] == "qwen3_omni" else []  # the random Talker may never stop
    assert main(["run", *args, *speech, "--out", str(out)]) == 0
    return json.loads((out / "result.json").read_text())


def audio_features(path: Path):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                        chunk_length=300, return_attention_mask=True)
    wave, _ = librosa.load(path, sr=16000, mono=True)
    return extractor([wave.astype(np.float32)], sampling_rate=16000, padding=True, truncation=False,
                     return_attention_mask=True, return_tensors="pt")


def audio_tokens(frames: int) -> int:
    """Reference doc section 1: placeholder count for `frames` valid mel frames."""
    r = frames % 100
    f1 = (r - 1) // 2 + 1
    f2 = (f1 - 1) // 2 + 1
    f3 = (f2 - 1) // 2 + 1
    return (f3 if r else 0) + 13 * (frames // 100)


def test_captioner_matches_transformers_generate(checkpoint, oracle, tmp_path) -> None:
    result = run(["captioner", "--checkpoint", str(checkpoint), "--input", f"audio={SPEECH}", "--greedy",
                  "--max-new-tokens", "32"], tmp_path)
    features = audio_features(SPEECH)
    n = audio_tokens(int(features["attention_mask"].sum()))
    expected_prompt = [IM_START, USER, NEWLINE, AUDIO_START, *[AUDIO_PAD] * n, AUDIO_END, IM_END, NEWLINE,
                       IM_START, ASSISTANT, NEWLINE]
    assert result["prompt_token_ids"] == expected_prompt
    with torch.no_grad():
        generated = oracle.thinker.generate(
            input_ids=torch.tensor([expected_prompt]),
            attention_mask=torch.ones(1, len(expected_prompt), dtype=torch.long),
            input_features=features["input_features"], feature_attention_mask=features["attention_mask"],
            do_sample=False, max_new_tokens=32)
    reference = generated[0, len(expected_prompt):].tolist()
    assert result["thinker_token_ids"] == reference
    assert len(set(reference)) > 3  # a lively model, not one repeated token
    assert (tmp_path / "text.txt").is_file()


def test_qwen3_omni_text_only_matches_transformers(checkpoint, oracle, tmp_path) -> None:
    result = run(["qwen3_omni", "--checkpoint", str(checkpoint), "--input", "text=Name three colours.",
                  "--greedy", "--max-new-tokens", "32"], tmp_path)
    prompt = result["prompt_token_ids"]
    system = prompt.index(IM_END) + 2  # the graph's system turn comes first
    assert prompt[:3] == [IM_START, SYSTEM, NEWLINE] and prompt[system:system + 3] == [IM_START, USER, NEWLINE]
    assert prompt[-3:] == [IM_START, ASSISTANT, NEWLINE]
    with torch.no_grad():
        generated = oracle.thinker.generate(input_ids=torch.tensor([prompt]), do_sample=False, max_new_tokens=32)
    assert result["thinker_token_ids"] == generated[0, len(prompt):].tolist()


def test_qwen3_omni_streams_text_and_times_every_node(checkpoint, tmp_path) -> None:
    result = run(["qwen3_omni", "--checkpoint", str(checkpoint), "--input", "text=What is this?",
                  "--input", f"image={PICTURE}", "--input", f"audio={SPEECH}", "--max-new-tokens", "12",
                  "--seed", "5"], tmp_path)
    nodes = result["timings"]["nodes"]
    assert nodes["vision_encoder"]["wall_s"] is not None and nodes["audio_encoder"]["wall_s"] is not None
    assert nodes["decode_video"]["skipped"]  # no video given: that branch is skipped, not failed
    assert nodes["thinker"]["items_out"]["tokens"] == len(result["thinker_token_ids"]) <= 12
    assert result["timings"]["first_output_s"]["text"] <= nodes["thinker"]["started_s"] + nodes["thinker"]["wall_s"]


@pytest.mark.parametrize("inputs, message", [
    ([], "none was given"),
    (["--input", "audio=MISSING.wav"], "does not exist"),
    (["--input", "audio=BAD"], "audio"),
])
def test_bad_input_is_a_user_error(checkpoint, tmp_path, capsys, inputs, message) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    inputs = [a.replace("BAD", str(bad)) for a in inputs]
    code = main(["run", "qwen3_omni", "--checkpoint", str(checkpoint), *inputs, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_checkpoint_that_does_not_match_its_config_is_a_user_error(checkpoint, tmp_path, capsys) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    config = json.loads((broken / "config.json").read_text())
    config["thinker_config"]["text_config"]["num_experts"] += 1
    (broken / "config.json").write_text(json.dumps(config))
    code = main(["run", "captioner", "--checkpoint", str(broken), "--input", f"audio={SPEECH}",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "mlp.gate.weight" in err and "expected" in err and "Traceback" not in err


def write_video_with_speech(path: Path, seconds: float = 2.0, fps: int = 8) -> Path:
    """A small mp4: moving colour bars over the committed speech clip as its audio track."""
    import av

    wave, _ = librosa.load(SPEECH, sr=16000, mono=True)
    wave = np.pad(wave, (0, max(0, int(seconds * 16000) - len(wave))))[: int(seconds * 16000)]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(int(seconds * fps)):
            pixels = np.zeros((64, 96, 3), dtype=np.uint8)
            pixels[:, (i * 11) % 96:, 0] = 220
            pixels[: 32, :, 1] = 30 * i % 256
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = av.AudioFrame.from_ndarray(wave[None, :].astype(np.float32), format="flt", layout="mono")
        samples.sample_rate = 16000
        for packet in audio.encode(samples):
            out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    return path


def test_audio_in_video_matches_transformers_generate(checkpoint, oracle, tmp_path) -> None:
    from oracle import video_with_audio_inputs

    from omnigraph.runtime.checkpoint import Checkpoint

    clip = write_video_with_speech(tmp_path / "clip.mp4")
    result = run(["qwen3_omni", "--checkpoint", str(checkpoint), "--input", f"video={clip}",
                  "--input", "text=What happens?", "--greedy", "--max-new-tokens", "32"], tmp_path / "out")
    prompt = result["prompt_token_ids"]
    assert prompt.count(AUDIO_START) == 1 and prompt.index(AUDIO_START) == prompt.index(151652) + 1

    with torch.no_grad():
        generated = oracle.thinker.generate(
            input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            **video_with_audio_inputs(Checkpoint.open(checkpoint), clip), do_sample=False, max_new_tokens=32)
    assert result["thinker_token_ids"] == generated[0, len(prompt):].tolist()


def test_image_and_audio_prompt_matches_transformers_generate(checkpoint, oracle, tmp_path) -> None:
    from omnigraph.nodes.common.vision_preprocess import PreprocessArgs, preprocess_image
    from omnigraph.runtime.checkpoint import Checkpoint
    from PIL import Image

    result = run(["qwen3_omni", "--checkpoint", str(checkpoint), "--input", f"image={PICTURE}",
                  "--input", f"audio={SPEECH}", "--input", "text=Describe both.", "--greedy",
                  "--max-new-tokens", "32"], tmp_path)
    prompt = result["prompt_token_ids"]
    ckpt = Checkpoint.open(checkpoint)
    vision = ckpt.config["thinker_config"]["vision_config"]
    args = PreprocessArgs.from_files(ckpt.json_file("preprocessor_config.json"), None, vision["patch_size"],
                                     vision["temporal_patch_size"], vision["spatial_merge_size"])
    pixels, grid = preprocess_image(torch.from_numpy(np.asarray(Image.open(PICTURE).convert("RGB"))), args)
    features = audio_features(SPEECH)
    with torch.no_grad():
        generated = oracle.thinker.generate(
            input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            input_features=features["input_features"], feature_attention_mask=features["attention_mask"],
            pixel_values=pixels, image_grid_thw=torch.tensor([grid]), do_sample=False, max_new_tokens=32)
    assert result["thinker_token_ids"] == generated[0, len(prompt):].tolist()
