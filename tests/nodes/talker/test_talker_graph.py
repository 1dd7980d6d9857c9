"""The whole speech path as a graph (mrope_interleaver -> thinker -> talker <-> code_predictor, a loop edge)
against the oracle's top-level greedy generate(return_audio=True): the talker's frames x codes must be equal,
for a text prompt and an audio prompt, on two configs. Also: a token list, and a slow token source, fed to
talker.tokens give the same codes as the thinker; text_context replaces the thinker for text prompts."""
import time
from typing import Iterator

import pytest
import torch
from talker_oracle import (A_END, A_START, ASSISTANT, AUDIO, CHAT, IM_END, IM_START, NL, SYSTEM, USER, WORDS,
                           oracle_codes, saved_omni)

from omnigraph.nodes.mrope_interleaver.node import MropeInterleaver
from omnigraph.nodes.text_context.node import TextContext
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.nodes.common.media_payloads import AudioEmbeddings, MediaItem
from omnigraph.nodes.common.token_payloads import TokenId, TokenIds
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.ports import Input, Output
from omnigraph.testing import graph_from_yaml, run_graph

THINKER_TOKENS, TALKER_TOKENS = 6, 9  # the reference makes TALKER_TOKENS - 1 frames at most

SPEECH = """
nodes:
  interleaver: {kind: mrope_interleaver}
  thinker: {kind: thinker, config: {greedy: true, max_new_tokens: %d}}
  talker: {kind: talker, config: {greedy: true, max_frames: %d, speaker: Chelsie}}
  code_predictor: {kind: code_predictor, config: {greedy: true}}%s
edges:
  - interleaver.thinker_prompt -> thinker.thinker_prompt
  - thinker.talker_context -> talker.context
  - talker.requests -> code_predictor.requests%s
loops: [code_predictor.frames -> talker.frames]
inputs: {prompt: interleaver.prompt, audio: interleaver.audio%s}
outputs: {codes: talker.codes, ids: thinker.token_ids}
"""
TOKEN_SOURCES = {  # extra node, extra edge, extra graph input
    "thinker": ("", "\n  - thinker.tokens -> talker.tokens", ""),
    "list": ("", "", ", tokens: talker.tokens"),
    "slow": ("\n  slow: {kind: t_slow_tokens}", "\n  - slow.tokens -> talker.tokens", ", ids: slow.ids"),
}


class SlowTokens(Node):
    """A test text source: a token list as a stream, slowly."""

    kind = "t_slow_tokens"

    class Config(NodeConfig):
        delay: float = 0.05

    inputs = (Input("ids", TokenIds),)
    outputs = (Output("tokens", TokenId, stream=True),)

    def stream(self, ids: TokenIds) -> Iterator[tuple[str, TokenId]]:
        for i in ids.ids:
            time.sleep(self.config.delay)
            yield "tokens", TokenId(i)


def speech_graph(source: str = "thinker"):
    return graph_from_yaml(SPEECH % (THINKER_TOKENS, TALKER_TOKENS - 1, *TOKEN_SOURCES[source]),
                           extra_kinds=[SlowTokens])


@pytest.fixture(scope="module", params=["base", "wide"])
def omni(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "ckpt"
    return saved_omni(request.param, path, seed=11), Checkpoint.open(path)


def audio_case(model):
    g = torch.Generator().manual_seed(3)
    features = torch.randn(1, 128, 180, generator=g)
    mask = torch.ones(1, 180, dtype=torch.long)
    with torch.no_grad():
        emb = model.thinker.get_audio_features(features, mask).last_hidden_state
    n = emb.shape[0]
    user = [IM_START, USER, NL, A_START, AUDIO, A_END, *WORDS[:4], IM_END, NL]
    ids = [*SYSTEM, *user, IM_START, ASSISTANT, NL]
    expanded = torch.tensor([[*SYSTEM, *user[:4], *[AUDIO] * n, *user[5:], IM_START, ASSISTANT, NL]])
    oracle_inputs = dict(input_ids=expanded, attention_mask=torch.ones_like(expanded), input_features=features,
                         feature_attention_mask=mask)
    graph_inputs = {"prompt": PromptTokens(torch.tensor(ids), (MediaItem("audio", 0),)),
                    "audio": AudioEmbeddings(emb, (n,))}
    return oracle_inputs, graph_inputs


def text_case():
    x = torch.tensor([CHAT])
    return dict(input_ids=x, attention_mask=torch.ones_like(x)), {"prompt": PromptTokens(x[0])}


@pytest.mark.parametrize("case", ["text", "audio"])
def test_graph_codes_equal_oracle_generate(omni, case):
    model, ckpt = omni
    oracle_inputs, graph_inputs = text_case() if case == "text" else audio_case(model)
    ref_ids, ref_codes = oracle_codes(model, THINKER_TOKENS, TALKER_TOKENS, speaker="chelsie", **oracle_inputs)
    out = run_graph(speech_graph(), graph_inputs, checkpoint=ckpt).outputs
    assert list(out["ids"].ids) == ref_ids
    G = model.config.talker_config.num_code_groups
    assert len(ref_codes) >= 2 and all(len(f) == G for f in ref_codes)
    assert list(out["codes"].frames) == ref_codes

    # the same ids from a list (fast), or from a slow source, give the same codes
    listed = run_graph(speech_graph("list"), graph_inputs | {"tokens": [TokenId(i) for i in ref_ids]},
                       checkpoint=ckpt).outputs
    assert list(listed["codes"].frames) == ref_codes
    if case == "audio":
        slow = run_graph(speech_graph("slow"), graph_inputs | {"ids": TokenIds(tuple(ref_ids))},
                         checkpoint=ckpt).outputs
        assert list(slow["codes"].frames) == ref_codes


TTS = """
nodes:
  interleaver: {kind: mrope_interleaver}
  context: {kind: text_context}
  slow: {kind: t_slow_tokens, config: {delay: %s}}
  talker: {kind: talker, config: {greedy: true, max_frames: %d, speaker: chelsie}}
  code_predictor: {kind: code_predictor, config: {greedy: true}}
edges:
  - interleaver.thinker_prompt -> context.thinker_prompt
  - context.talker_context -> talker.context
  - slow.tokens -> talker.tokens
  - talker.requests -> code_predictor.requests
loops: [code_predictor.frames -> talker.frames]
inputs: {prompt: interleaver.prompt, audio: interleaver.audio, ids: slow.ids}
outputs: {codes: talker.codes}
"""


def test_text_context_needs_no_thinker(omni):
    model, ckpt = omni
    oracle_inputs, graph_inputs = text_case()
    ref_ids, ref_codes = oracle_codes(model, THINKER_TOKENS, TALKER_TOKENS, speaker="chelsie", **oracle_inputs)
    for delay in (0.0, 0.03):
        graph = graph_from_yaml(TTS % (delay, TALKER_TOKENS - 1), extra_kinds=[SlowTokens])
        out = run_graph(graph, graph_inputs | {"ids": TokenIds(tuple(ref_ids))}, checkpoint=ckpt).outputs
        assert list(out["codes"].frames) == ref_codes


def test_text_context_refuses_media(omni):
    model, ckpt = omni
    _, graph_inputs = audio_case(model)
    interleaver, context = MropeInterleaver(), TextContext()
    interleaver.load("cpu", ckpt)
    context.load("cpu", ckpt)
    prompt = interleaver.process(**graph_inputs)["thinker_prompt"]
    with pytest.raises(UserError, match="thinker's `talker_context`"):
        context.process(prompt)
