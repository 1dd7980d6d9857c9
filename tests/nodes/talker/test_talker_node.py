"""The talker/code_predictor nodes' behaviour: too little text, seeded sampling, bfloat16, the user-turn
selection of the TalkerContext, the thinker's context equal to text_context's for a text prompt, the prefill
computed before the second text token, and min_frames."""
import threading
import time

import pytest
import torch
from talker_oracle import ASSISTANT, CHAT, IM_END, IM_START, NL, USER, WORDS, saved_omni

from omnigraph.nodes.qwen3.talker_context import user_turn_mask
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.nodes.common.token_payloads import TokenId
from omnigraph.nodes.qwen.payloads import PromptTokens, ThinkerPrompt
from omnigraph.testing import graph_from_yaml, run_graph, run_node

TTS = """
nodes:
  interleaver: {kind: mrope_interleaver}
  context: {kind: text_context}
  talker: {kind: talker, config: %s}
  code_predictor: {kind: code_predictor, config: %s}
edges:
  - interleaver.thinker_prompt -> context.thinker_prompt
  - context.talker_context -> talker.context
  - talker.requests -> code_predictor.requests
loops: [code_predictor.frames -> talker.frames]
inputs: {prompt: interleaver.prompt, tokens: talker.tokens}
outputs: {codes: talker.codes, requests: talker.requests}
"""


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("node") / "ckpt"
    saved_omni("base", path, seed=21)
    return Checkpoint.open(path)


def speak(ckpt, tokens, talker: dict, predictor: dict | None = None, seed: int = 0):
    graph = graph_from_yaml(TTS % (talker, predictor or {"greedy": talker.get("greedy", False)}))
    inputs = {"prompt": PromptTokens(torch.tensor(CHAT)), "tokens": [TokenId(t) for t in tokens]}
    return run_graph(graph, inputs, checkpoint=ckpt, seed=seed).outputs


def test_fewer_than_two_tokens_make_no_frames(ckpt):
    for tokens in ([], [WORDS[0]]):
        out = speak(ckpt, tokens, {"greedy": True, "max_frames": 4})
        assert out["codes"].frames == () and out.get("requests", []) == []


def test_frames_budget_and_requests(ckpt):
    out = speak(ckpt, WORDS, {"greedy": True, "max_frames": 5})
    frames, requests = out["codes"].frames, out["requests"]
    assert len(frames) == len(requests) == 5 and all(len(f) == 4 for f in frames)
    assert [r.index for r in requests] == list(range(5))
    assert [r.code0 for r in requests] == [f[0] for f in frames]
    assert all(0 <= f[0] < 2048 for f in frames) and all(r.hidden.shape == (32,) for r in requests)


def test_sampling_is_seeded_by_the_run(ckpt):
    draw = lambda seed: speak(ckpt, WORDS, {"max_frames": 6, "temperature": 1.5},  # noqa: E731
                              {"temperature": 1.5}, seed=seed)["codes"].frames
    a = draw(1)
    assert len(a) >= 1 and draw(1) == a and draw(2) != a


def test_bfloat16_runs(ckpt):
    out = speak(ckpt, WORDS, {"greedy": True, "max_frames": 3, "dtype": "bfloat16"},
                {"greedy": True, "dtype": "bfloat16"})
    assert len(out["codes"].frames) == 3


def test_user_turns_are_selected():
    system = [IM_START, 8948, NL, 11, IM_END, NL]
    user1 = [IM_START, USER, NL, 12, 13, IM_END, NL]
    reply = [IM_START, ASSISTANT, NL, 14, IM_END, NL]
    user2 = [IM_START, USER, NL, 15, IM_END, NL]
    ids = torch.tensor([*system, *user1, *reply, *user2, IM_START, ASSISTANT, NL])
    mask = user_turn_mask(ids, IM_START, USER)
    assert ids[mask].tolist() == user1 + user2


def test_thinker_context_equals_text_context_for_text(ckpt):
    from omnigraph.nodes.thinker.weights import load_thinker

    thinker = load_thinker(ckpt)
    ids = torch.tensor(CHAT)
    positions = torch.arange(len(CHAT)).float().expand(3, -1)
    prompt = ThinkerPrompt(ids, thinker.embed_tokens.weight[ids].detach(), positions, 0)
    a = run_node("thinker", {"thinker_prompt": prompt}, {"greedy": True, "max_new_tokens": 2},
                 checkpoint=ckpt)["talker_context"]
    b = run_node("text_context", {"thinker_prompt": prompt}, checkpoint=ckpt)["talker_context"]
    assert a.hidden is None and b.hidden is None and not a.media_mask.any()
    assert a.ids.tolist() == b.ids.tolist() == [IM_START, USER, NL, *WORDS, IM_END, NL]
    assert torch.equal(a.embeds, b.embeds)


def test_the_prefill_is_computed_while_the_second_token_comes(ckpt):
    """The Talker's prompt needs only the reply's first token: its prefill (and first frame) is computed while
    the Thinker makes the second, which only tells whether the first was the last; the codes are unchanged."""
    ex = LocalExecutor(graph_from_yaml(TTS % ({"greedy": True, "max_frames": 5}, {"greedy": True})),
                       checkpoint=ckpt)
    ex.load()
    server = ex.nodes["talker"]._server

    def tokens():
        yield TokenId(WORDS[0])
        deadline = time.monotonic() + 60
        while server.live_slots == 0:  # the first token's prefill holds a slot
            assert time.monotonic() < deadline, "the prefill waited for the second token"
            threading.Event().wait(0.001)
        yield from (TokenId(t) for t in WORDS[1:])

    prompt = {"prompt": PromptTokens(torch.tensor(CHAT))}
    got = ex.run(prompt | {"tokens": tokens()}).outputs["codes"]
    assert got == ex.run(prompt | {"tokens": [TokenId(t) for t in WORDS]}).outputs["codes"]
    assert len(got.frames) == 5 and server.live_slots == 0


class _EosFirst(torch.nn.Module):
    """A codec head whose best code is always `eos` (so only min_frames keeps a reply going)."""

    def __init__(self, head, eos: int):
        super().__init__()
        self.head, self.eos = head, eos

    @property
    def weight(self):
        return self.head.weight

    def forward(self, h):
        logits = self.head(h)
        logits[..., self.eos] = logits.max() + 10
        return logits


def test_min_frames_holds_eos_back(ckpt):
    """EOS is never chosen before min_frames frames (transformers' min_new_tokens): a head that always prefers
    EOS still gives min_frames frames, the codes of those frames unchanged (EOS masked, nothing else)."""
    def frames(talker: dict, eos_first: bool):
        ex = LocalExecutor(graph_from_yaml(TTS % (talker, {"greedy": True})), checkpoint=ckpt)
        ex.load()
        node = ex.nodes["talker"]
        if eos_first:
            node._model.codec_head = _EosFirst(node._model.codec_head, node._ids.codec_eos)
        inputs = {"prompt": PromptTokens(torch.tensor(CHAT)), "tokens": [TokenId(t) for t in WORDS]}
        return ex.run(inputs).outputs["codes"].frames

    assert frames({"greedy": True, "max_frames": 6}, eos_first=True) == ()
    held = frames({"greedy": True, "max_frames": 6, "min_frames": 4}, eos_first=True)
    assert len(held) == 4 and held == frames({"greedy": True, "max_frames": 4, "min_frames": 4}, eos_first=False)


def test_min_frames_above_max_frames_is_refused():
    with pytest.raises(GraphValidationError, match=r"\[talker\].*min_frames \(7\) must be at most max_frames \(6\)"):
        graph_from_yaml(TTS % ({"max_frames": 6, "min_frames": 7}, {}))
