"""Code predictor parity: per-step logits and greedy codes against the oracle code predictor's generate on two
configs (head_dim, heads, layers, code groups differ); the node over a stream of requests; seeded sampling."""
import pytest
import torch
from oracle import build_model, save_checkpoint

from omnigraph.nodes.code_predictor.weights import load_code_predictor
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.media_payloads import FrameRequest
from omnigraph.testing import run_node

CONFIGS = {
    "base": {"num_code_groups": 4},
    "odd": {"num_code_groups": 5, "head_dim": 24, "num_attention_heads": 3, "num_key_value_heads": 1,
            "num_hidden_layers": 3, "intermediate_size": 40},
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def setup(request, tmp_path_factory):
    cp = CONFIGS[request.param]
    model = build_model({"talker_config": {"num_code_groups": cp["num_code_groups"]},
                         "talker_config.code_predictor_config": cp,
                         "code2wav_config": {"num_quantizers": cp["num_code_groups"]}}, seed=2)
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for n, p in model.talker.code_predictor.named_parameters():
            if "norm" in n:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    path = save_checkpoint(model, tmp_path_factory.mktemp(request.param) / "ckpt")
    ckpt = Checkpoint.open(path)
    return model, ckpt, load_code_predictor(ckpt), cp["num_code_groups"]


def requests(n: int, width: int):
    g = torch.Generator().manual_seed(4)
    return [FrameRequest(i, torch.randn(width, generator=g) * 2, int(torch.randint(0, 2048, (1,), generator=g)))
            for i in range(n)]


def test_logits_and_greedy_codes_match_oracle(setup):
    model, ckpt, ours, G = setup
    rot, cache = ours.rope_matrices(), ours.frame_cache(1)
    for r in requests(3, 32):
        with torch.no_grad():
            emb = torch.stack([r.hidden, model.talker.model.codec_embedding.weight[r.code0]])[None]
            ref = model.talker.code_predictor.generate(inputs_embeds=emb, max_new_tokens=G - 1, do_sample=False,
                                                       output_logits=True, return_dict_in_generate=True)
        seen = []

        def choose(logits):
            seen.append(logits[0].clone())
            return logits.argmax(-1)

        codes = ours.frames(r.hidden[None], torch.tensor([r.code0]), choose, cache, rot)[0].tolist()
        assert codes == [r.code0, *ref.sequences[0, -(G - 1):].tolist()]
        assert len(seen) == len(ref.logits) == G - 1
        for mine, theirs in zip(seen, ref.logits):
            torch.testing.assert_close(mine, theirs[0], atol=1e-5, rtol=1e-5)


def test_node_streams_frames_and_sampling_is_seeded(setup):
    model, ckpt, ours, G = setup
    reqs = requests(4, 32)
    greedy = run_node("code_predictor", {"requests": reqs}, {"greedy": True}, checkpoint=ckpt)["frames"]
    rot, cache = ours.rope_matrices(), ours.frame_cache(1)
    for r, f in zip(reqs, greedy, strict=True):
        expect = ours.frames(r.hidden[None], torch.tensor([r.code0]), lambda x: x.argmax(-1), cache, rot)[0].tolist()
        assert f.index == r.index and list(f.codes) == expect
    draw = lambda seed: [f.codes for f in run_node("code_predictor", {"requests": reqs},  # noqa: E731
                                                   {"temperature": 1.5}, checkpoint=ckpt, seed=seed)["frames"]]
    a = draw(1)
    assert draw(1) == a and draw(2) != a
    assert all(len(c) == G and all(0 <= x < 2048 for x in c[1:]) for c in a)
