"""token2wav against transformers 5.23 on two tiny configs (DiT depth/heads/blocks and BigVGAN rates differ):
the DiT forward, the sampler's mel (same noise: the oracle's global RNG seeded, ours an explicit CPU generator)
and BigVGAN's waveform within 1e-4; the node's whole-utterance audio within 1e-4 of `token2wav(...)`."""
import pytest
import torch
from oracle25 import VARIANT
from token2wav_oracle import perturbed_token2wav, random_codes, save_checkpoint

from omnigraph.nodes.qwen2_5.payloads import CodecId
from omnigraph.nodes.token2wav.sampler import solve
from omnigraph.nodes.token2wav.weights import load_token2wav
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.testing import run_node

T, SEED, STEPS = 30, 11, 4  # 3 RK4 steps: the grid and solver are the same at any count


@pytest.fixture(scope="module", params=[None, VARIANT], ids=["base", "variant"])
def oracle(request, tmp_path_factory):
    model = perturbed_token2wav(request.param, seed=5)
    path = save_checkpoint(model, tmp_path_factory.mktemp("token2wav") / "ckpt")
    ckpt = Checkpoint.open(path)
    return model, ckpt, load_token2wav(ckpt), model.speaker_map["Chelsie"]


@pytest.mark.parametrize("codes_count", [T, 130], ids=["masked", "blockwise"])  # 130: past 4 windows of blocks
def test_dit_forward(oracle, codes_count):
    model, _, (dit, _), spk = oracle
    codes, N = random_codes(codes_count), 2 * codes_count
    x, t = torch.randn(1, N, 80, generator=torch.Generator().manual_seed(2)), torch.tensor([0.37])
    with torch.no_grad():
        expected = model.token2wav.code2wav_dit_model(
            x, condition_vector=spk["ref_mel"], speaker_embedding=spk["cond"][:, None].expand(1, N, -1),
            quantized_code=codes, time_step=t, apply_cfg=True)
        got = dit(torch.cat([x, x]), t.expand(2), dit.conditioning(codes, dit.voice(spk["cond"], spk["ref_mel"])))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_sampler_and_bigvgan(oracle):
    model, _, (dit, vocoder), spk = oracle
    codes = random_codes(T)
    with torch.no_grad():
        torch.manual_seed(SEED)
        expected = model.token2wav.code2wav_dit_model.sample(spk["cond"], spk["ref_mel"], codes, num_steps=STEPS)
        noise = torch.randn((1, 2 * T, 80), dtype=torch.float32, generator=torch.Generator("cpu").manual_seed(SEED))
        mel = solve(dit, noise, dit.conditioning(codes, dit.voice(spk["cond"], spk["ref_mel"])), STEPS)
        torch.testing.assert_close(mel, expected, atol=1e-4, rtol=0)
        torch.testing.assert_close(vocoder(expected)[0], model.token2wav.code2wav_bigvgan_model(expected),
                                   atol=1e-4, rtol=0)


def test_node_whole_equals_token2wav(oracle):
    model, ckpt, _, spk = oracle
    codes = random_codes(T, seed=3)
    with torch.no_grad():
        torch.manual_seed(SEED)
        expected = model.token2wav(codes, spk["cond"], spk["ref_mel"], num_steps=STEPS)
    out = run_node("token2wav", {"codes": [CodecId(int(c)) for c in codes[0]]}, {"seed": SEED, "num_steps": STEPS},
                   checkpoint=ckpt)
    (chunk,) = out["audio"]
    assert chunk.sample_rate == 24000 and out["codec_codes"].ids == tuple(codes[0].tolist())
    torch.testing.assert_close(chunk.samples, expected, atol=1e-4, rtol=0)
