"""Code predictor parity: per-step logits and greedy codes against the oracle code predictor's generate on two
configs (head_dim, heads, layers, code groups differ); the node over a stream of requests; seeded sampling;
batched frames equal frames alone."""
import pytest
import torch
from oracle import build_model, save_checkpoint

from dataclasses import dataclass

from omnigraph.nodes.code_predictor import server as server_module
from omnigraph.nodes.code_predictor.server import CodePredictorServer, choose
from omnigraph.nodes.qwen3.loop_handoff import FrameItem
from omnigraph.nodes.code_predictor.weights import load_code_predictor
from omnigraph.nodes.common.sampling import SamplingParams, make_generator
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen.payloads import FrameRequest
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

        def greedy(logits):
            seen.append(logits[0].clone())
            return logits.argmax(-1)

        codes = ours.frames(r.hidden[None], torch.tensor([r.code0]), greedy, cache, rot)[0].tolist()
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


@dataclass(frozen=True)
class Keyed(FrameItem):
    key: int = -1  # which request (to file its logits)


CHOOSERS = [SamplingParams(greedy=True), SamplingParams(temperature=1.5, top_k=50, top_p=0.8),
            SamplingParams(temperature=0.7, top_p=0.9), SamplingParams(temperature=1.0, top_k=5),
            SamplingParams(greedy=True), SamplingParams(temperature=2.0, top_k=100, top_p=0.95)]


def test_batched_frames_equal_frames_alone(setup, monkeypatch):
    """Batches of different sizes (the frame cache grows and is reused), rows with their own settings and
    generators: each row's codes are those it gets alone, its logits within 1e-4."""
    _, _, ours, G = setup
    seen = {}

    def recording(logits, items):
        for row, item in zip(logits, items):
            seen.setdefault(item.key, []).append(row.clone())
        return choose(logits, items)

    monkeypatch.setattr(server_module, "choose", recording)
    reqs = requests(10, 32)

    def frames(batches: list[list[int]]) -> dict:
        server = CodePredictorServer(ours, max_batch=8, name="test")
        generators = {i: make_generator(100 + i) for i in range(len(reqs))}
        out = {}
        for batch in batches:
            items = [Keyed(reqs[i].hidden, reqs[i].code0, CHOOSERS[i % len(CHOOSERS)],
                           None if CHOOSERS[i % len(CHOOSERS)].greedy else generators[i], key=i) for i in batch]
            for i, codes in zip(batch, server.compute(items)):
                out.setdefault(i, []).append(codes)
        return out

    alone = frames([[i] for i in range(10)] * 2)
    want_logits, seen = seen, {}
    batched = frames([[0, 1, 2], [3, 4, 5, 6, 7], [8, 9], [0, 1, 2, 3, 4, 5, 6, 7], [8, 9]])
    assert batched == alone
    assert len({tuple(c[0]) for c in alone.values()}) == 10 and all(len(c[0]) == G for c in alone.values())
    for key, rows in want_logits.items():
        assert len(seen[key]) == len(rows) == 2 * (G - 1)
        for a, b in zip(seen[key], rows):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_bad_frame_requests_are_user_errors(setup):
    _, ckpt, _, _ = setup
    bad = [FrameRequest(0, torch.zeros(32), 10 ** 6)]
    with pytest.raises(NodeFailed, match="code 0 = 1000000 is outside the talker's codec vocabulary") as failed:
        run_node("code_predictor", {"requests": bad}, {"greedy": True}, checkpoint=ckpt)
    assert isinstance(failed.value.error, UserError)
