"""token2wav's behaviour: stream mode emits block by block and vocodes exactly, seeds, located errors."""
import pytest
import torch
from oracle25 import VARIANT, config_dict
from token2wav_oracle import random_codes

from omnigraph.nodes.qwen2_5.payloads import CodecId
from omnigraph.nodes.token2wav.node import Token2Wav
from omnigraph.nodes.token2wav.args import BigVGANArgs
from omnigraph.nodes.token2wav.bigvgan import BigVGAN, kaiser_sinc
from omnigraph.nodes.token2wav.streaming import WaveStream
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.checkpoint_check import CheckpointProbe
from omnigraph.runtime.context import RunContext
from omnigraph.runtime.errors import UserError
from omnigraph.testing import run_node

T = 50  # 100 mel frames: 5 blocks of 24


def speak(ckpt, codes, config, seed=0):
    out = run_node("token2wav", {"codes": [CodecId(int(c)) for c in codes]}, config, checkpoint=ckpt, seed=seed)
    return out.get("audio", []), out["codec_codes"].ids


def test_stream_emits_block_by_block_close_to_whole(ckpt):
    codes = random_codes(T)[0]
    chunks, ids = speak(ckpt, codes, {"mode": "stream", "seed": 4, "num_steps": 4, "chunk_blocks": 1})
    (whole,), _ = speak(ckpt, codes, {"mode": "whole", "seed": 4, "num_steps": 4})
    assert ids == tuple(codes.tolist()) and len(chunks) > 3 and [c.index for c in chunks] == list(range(len(chunks)))
    wav = torch.cat([c.samples for c in chunks])
    assert wav.shape == whole.samples.shape == (480 * T,)
    # the DiT sees a window per block: an approximation in general; on this random model the far blocks'
    # influence is below float noise
    torch.testing.assert_close(wav, whole.samples, atol=1e-4, rtol=0)
    pairs, _ = speak(ckpt, codes, {"mode": "stream", "seed": 4, "num_steps": 4})  # 2 blocks per solve
    assert len(pairs) < len(chunks)
    torch.testing.assert_close(torch.cat([c.samples for c in pairs]), whole.samples, atol=1e-4, rtol=0)


@pytest.mark.parametrize("overrides", [None, VARIANT], ids=["base", "variant"])  # rates 5,3,2,2,2,2 / 5,4,3,2,2,2
def test_vocoder_stream_is_exact(overrides):
    vocoder = BigVGAN(BigVGANArgs.from_hf_config(config_dict(overrides)))
    vocoder.init_buffers("cpu")
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(80, 80, generator=g) - 4
    with torch.no_grad():
        for p in vocoder.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.2))
        expected = vocoder(mel[None])[0]
        stream = WaveStream(vocoder)
        parts = [stream.take(mel[:, i:i + 24], False) for i in range(0, 80, 24)] + [stream.take(None, True)]
    assert parts[0].numel() == 0  # the first block waits for its right context
    torch.testing.assert_close(torch.cat(parts), expected, atol=1e-6, rtol=0)


def test_kaiser_filter_taps():
    half = [0.002029, 0.009389, -0.025543, -0.057657, 0.128573, 0.44321]  # reference section 7.5
    torch.testing.assert_close(kaiser_sinc(), torch.tensor(half + half[::-1]), atol=1e-6, rtol=0)


def test_seed_from_config_or_run(ckpt):
    codes = random_codes(6)[0]
    audio = lambda config, seed: speak(ckpt, codes, {**config, "num_steps": 2}, seed)[0][0].samples  # noqa: E731
    run_1 = audio({}, seed=1)
    derived = RunContext(run_id="any", node="node", seed=1).node_seed()  # run_node names its node "node"
    assert torch.equal(audio({"seed": derived}, seed=2), run_1)
    assert not torch.equal(audio({}, seed=2), run_1)


def test_bad_input_is_a_located_user_error(ckpt):
    assert speak(ckpt, [], {}) == ([], ())
    with pytest.raises(Exception, match=r"codec id 8449 \(item 1 of the codes stream\) is outside \[0, 8448\]"):
        speak(ckpt, [5, 8449], {})
    node = Token2Wav(Token2Wav.Config(speaker="chelsie"))
    with pytest.raises(UserError, match="unknown speaker 'chelsie'.*did you mean 'Chelsie'"):
        node.load("cpu", ckpt)


def test_checkpoint_probe(ckpt):
    probe = CheckpointProbe.open(ckpt.path)
    Token2Wav().check_checkpoint(probe)
    assert probe.problems == [] and any("code2wav_bigvgan_model.conv_post" in k for k in probe.fitting)


def test_bad_config_is_located(ckpt, tmp_path):
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ckpt.path, bad)
    config = json.loads((bad / "config.json").read_text())
    config["token2wav_config"]["bigvgan_config"]["upsample_initial_channel"] = 32
    del config["token2wav_config"]["dit_config"]["block_size"]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"config.json: required field 'token2wav_config.dit_config.block_size'"):
        Token2Wav().load("cpu", Checkpoint.open(bad))
    config["token2wav_config"]["dit_config"]["block_size"] = 24
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"config.json: token2wav_config: upsample_initial_channel 32 is below 2\^6"):
        Token2Wav().load("cpu", Checkpoint.open(bad))
