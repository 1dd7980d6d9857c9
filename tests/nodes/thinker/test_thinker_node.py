"""The thinker node's decoding settings: seeded sampling, generation_config defaults, stop tokens, bfloat16."""
import json
import os

import pytest
import torch
from thinker_oracle import CHAT, saved_oracle, with_width

from omnigraph.nodes.thinker.model import generate
from omnigraph.nodes.common.generation_settings import DEFAULT_SAMPLING
from omnigraph.nodes.thinker.node import Thinker
from omnigraph.nodes.thinker.weights import load_thinker
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.media_payloads import ThinkerPrompt
from omnigraph.testing import run_node

STOP = 151645


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("node") / "ckpt"
    saved_oracle(with_width(64, dict(num_hidden_layers=2), 1), path, seed=7)
    return Checkpoint.open(path)


def text_prompt(model) -> ThinkerPrompt:
    ids = torch.tensor(CHAT)
    return ThinkerPrompt(ids, model.embed_tokens.weight[ids].detach(), torch.arange(len(CHAT)).float().expand(3, -1),
                         0)


def test_sampling_is_seeded_by_the_run(ckpt):
    prompt = text_prompt(load_thinker(ckpt))
    config = {"max_new_tokens": 12, "temperature": 1.5, "top_k": 0, "top_p": 1.0}
    draw = lambda seed: run_node("thinker", {"thinker_prompt": prompt}, config, checkpoint=ckpt,  # noqa: E731
                                 seed=seed)["token_ids"].ids
    a = draw(1)
    assert len(a) == 12 and draw(1) == a and draw(2) != a


def test_sampling_defaults_come_from_generation_config(ckpt, tmp_path):
    for name in os.listdir(ckpt.path):
        if name != "generation_config.json":
            os.symlink(ckpt.path / name, tmp_path / name)
    node = Thinker(Thinker.Config(top_p=0.5))
    node.load("cpu", Checkpoint.open(tmp_path))
    assert node.sampling_params().temperature == DEFAULT_SAMPLING["temperature"]
    (tmp_path / "generation_config.json").write_text(json.dumps({"temperature": 0.3, "top_k": 5,
                                                                 "eos_token_id": [151645, 151643]}))
    node = Thinker(Thinker.Config(top_p=0.5))
    node.load("cpu", Checkpoint.open(tmp_path))
    params = node.sampling_params()
    assert (params.temperature, params.top_k, params.top_p, params.greedy) == (0.3, 5, 0.5, False)
    assert node._stop_ids == {151645, 151643}


def test_generation_stops_after_a_stop_token(ckpt):
    model = load_thinker(ckpt)
    p = text_prompt(model)
    greedy = lambda logits, prev: logits.argmax(-1)  # noqa: E731
    args = (model, p.embeds[None], p.positions[:, None], 0, greedy)
    first = list(generate(*args, 5))
    assert len(first) == 5
    assert list(generate(*args, 5, stop_ids=(first[2],))) == first[:3]


def test_a_huge_budget_costs_nothing_on_a_short_reply(ckpt):
    model = load_thinker(ckpt)
    p = text_prompt(model)
    greedy = lambda logits, prev: logits.argmax(-1)  # noqa: E731
    want = list(generate(model, p.embeds[None], p.positions[:, None], 0, greedy, 300))  # caches grow past 256

    def greedy_then_stop(logits, prev):  # prev: the prompt and the tokens so far
        return torch.tensor([STOP]) if prev.shape[1] == len(CHAT) + 300 else logits.argmax(-1)

    got = list(generate(model, p.embeds[None], p.positions[:, None], 0, greedy_then_stop, 10**12,
                        stop_ids=(STOP,), prompt_ids=p.input_ids))
    assert got == want + [STOP]


def test_bfloat16_decoder_stays_close_to_float32(ckpt):
    f32, bf16 = load_thinker(ckpt), load_thinker(ckpt, dtype=torch.bfloat16)
    p = text_prompt(f32)
    with torch.inference_mode():
        ref = f32.logits(p.embeds[None], p.positions[:, None])
        low = bf16.logits(p.embeds[None].bfloat16(), p.positions[:, None])
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, atol=0.05 * ref.abs().max().item(), rtol=0.05)
    out = run_node("thinker", {"thinker_prompt": p}, {"greedy": True, "max_new_tokens": 4, "dtype": "bfloat16"},
                   checkpoint=ckpt)
    assert len(out["token_ids"].ids) == 4
