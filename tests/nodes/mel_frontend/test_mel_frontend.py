"""mel_frontend against transformers' WhisperFeatureExtractor, called the way the Qwen3-Omni processor calls it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from omnigraph.nodes.mel_frontend.model import MelArgs, mel_filterbank, valid_frames
from omnigraph.nodes.mel_frontend.node import MelFrontend
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.nodes.common.media_payloads import MelFeatures
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.runtime.payloads import FilePath, Waveform
from omnigraph.testing import run_node

SPEECH = Path(__file__).parents[2] / "fixtures" / "media" / "speech.wav"
TOL = dict(atol=1e-5, rtol=1e-5)  # max abs diff seen: 1.2e-7 (float32 rounding)


def whisper_fe(feature_size: int = 128):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=feature_size, sampling_rate=16000, hop_length=160, n_fft=400,
                                   chunk_length=300, return_attention_mask=True)


def reference(clips: list[np.ndarray], fe=None) -> tuple[list[torch.Tensor], list[int]]:
    """Per-clip valid features and mask sums, from one processor-style call over the whole batch."""
    out = (fe or whisper_fe())(clips, sampling_rate=16000, padding=True, truncation=False,
                               return_attention_mask=True, return_tensors="pt")
    lengths = out["attention_mask"].sum(-1).tolist()
    return [out["input_features"][i, :, :n] for i, n in enumerate(lengths)], lengths


def speech() -> np.ndarray:
    samples, rate = soundfile.read(SPEECH, dtype="float32")
    assert rate == 16000 and samples.ndim == 1
    return samples


def chirp(n: int, f0: float = 100.0, f1: float = 7000.0, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / 16000
    sweep = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1] if n > 1 else 1.0)))
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.5 * sweep + 0.05 * noise).astype(np.float32)


def prompt(*clips: np.ndarray, rate: int = 16000) -> PromptTokens:
    return PromptTokens(ids=torch.zeros(1, dtype=torch.long),
                        audios=tuple(Waveform(torch.from_numpy(c), rate) for c in clips))


def frontend(config: dict | None = None, checkpoint=None) -> MelFrontend:
    node = MelFrontend(MelFrontend.Config(**(config or {})))
    node.load("cpu", checkpoint)
    return node


def test_filterbank_is_slaney():
    ours = mel_filterbank(128, 400, 16000, 0.0, 8000.0)
    torch.testing.assert_close(torch.from_numpy(ours), torch.from_numpy(whisper_fe().mel_filters), atol=1e-12, rtol=0)


def test_speech_clip_through_run_node():
    clip = speech()
    out = run_node("mel_frontend", {"prompt": prompt(clip)})
    (ref,), (frames,) = reference([clip])
    assert isinstance(out["mel"], MelFeatures) and frames == len(clip) // 160
    torch.testing.assert_close(out["mel"].features[0], ref, **TOL)
    assert out["mel"].features[0].abs().max() > 0.5  # real content, not a floor-only spectrum


@pytest.mark.parametrize("lengths", [[32123, 16050], [16050, 32123], [16000, 161, 160 * 7, 4003, 24011],
                                     [201], [48000, 48000]])
def test_batch_matches_processor(lengths):
    clips = [speech()[:n] if n == 24011 else chirp(n, seed=i) for i, n in enumerate(lengths)]
    mel = frontend().process(prompt(*clips))["mel"]
    ref, frames = reference(clips)
    assert [f.shape[-1] for f in mel.features] == frames == valid_frames(lengths, 160)
    for ours, theirs in zip(mel.features, ref):
        torch.testing.assert_close(ours, theirs, **TOL)


def test_padded_batch_frame_counts():
    # The longest clip gets floor(L / 160) frames, shorter clips ceil(L / 160).
    assert valid_frames([32123, 16050], 160) == [200, 101]
    assert valid_frames([16050], 160) == [100]
    assert valid_frames([320, 161, 160, 1], 160) == [2, 2, 1, 1]


def test_preprocessor_config_sets_sizes(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "sampling_rate": 16000,
        "hop_length": 160, "n_fft": 400, "n_samples": 480000}))
    ckpt = Checkpoint(tmp_path, {}, {})
    clips = [chirp(20000), speech()]
    node = frontend(checkpoint=ckpt)
    assert node.args == MelArgs(n_mels=80, max_samples=480000)
    mel = node.process(prompt(*clips))["mel"]
    ref, _ = reference(clips, whisper_fe(80))
    assert mel.features[0].shape == (80, 125)
    for ours, theirs in zip(mel.features, ref):
        torch.testing.assert_close(ours, theirs, **TOL)


def test_no_audio_gives_no_output():
    assert run_node("mel_frontend", {"prompt": prompt()}) == {}


def test_clip_over_limit():
    limit = r"audio clip 2 of 2 is 1.50 s long, over the model's limit of 1 s per audio clip"
    with pytest.raises(UserError, match=limit):
        frontend({"max_seconds": 1.0}).process(prompt(chirp(8000), speech()))
    # The default limit comes from the checkpoint's n_samples.
    assert frontend().args.max_samples == 300 * 16000


def test_bad_clips():
    node = frontend()
    with pytest.raises(UserError, match="audio clip 1 of 1 is at 44100 Hz; the model takes 16000 Hz"):
        node.process(prompt(chirp(44100), rate=44100))
    stereo = PromptTokens(torch.zeros(1, dtype=torch.long), audios=(Waveform(torch.zeros(2, 16000), 16000),))
    with pytest.raises(UserError, match=r"shape \[2, 16000\]; expected mono"):
        node.process(stereo)
    with pytest.raises(UserError, match="audio clip 2 of 2 is empty"):
        node.process(prompt(chirp(1600), np.zeros(0, np.float32)))
    with pytest.raises(UserError, match="too short"):
        node.process(prompt(chirp(200)))


def test_clips_too_short_for_the_processor_fail_naming_their_file(tmp_path):
    """A 10 ms clip: transformers' WhisperFeatureExtractor (as the Qwen3-Omni processor calls it) fails too;
    one sample more than n_fft // 2 is the shortest it takes, and the frontend takes it as well."""
    with pytest.raises(RuntimeError):
        reference([chirp(160)])
    soundfile.write(tmp_path / "click.wav", chirp(160), 16000)
    click = run_node("media_decode", {"path": FilePath(str(tmp_path / "click.wav"))})["audio"]
    message = f"audio clip 2 of 2 \\(from '{tmp_path / 'click.wav'}'\\): too short for the mel frontend: the " \
              "longest clip has 160 samples \\(10.0 ms\\) and it needs more than 200"
    with pytest.raises(UserError, match=message):
        frontend().process(PromptTokens(ids=torch.zeros(1, dtype=torch.long), audios=(click, click)))
    (ours,), (theirs,) = frontend().process(prompt(chirp(201)))["mel"].features, reference([chirp(201)])[0]
    torch.testing.assert_close(ours, theirs, **TOL)


def test_clip_errors_name_the_file(tmp_path):
    clip = Waveform(torch.from_numpy(chirp(44100)), 44100, source="/data/talk.mp3")
    with pytest.raises(UserError, match=r"audio clip 1 of 1 \(from '/data/talk.mp3'\) is at 44100 Hz"):
        frontend().process(PromptTokens(ids=torch.zeros(1, dtype=torch.long), audios=(clip,)))
