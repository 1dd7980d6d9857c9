"""The Thinker text decoder against the oracle: logits at every position, hidden states 0 / accept_hidden_layer /
final, and 32 greedy tokens, on several text configs (float32, eager attention)."""
import pytest
import torch
from checkpoint_edits import with_config_edit
from thinker_oracle import CHAT, saved_oracle, with_width

from omnigraph.nodes.thinker.model import HiddenTrace, ThinkerArgs
from omnigraph.nodes.thinker.weights import load_thinker
from omnigraph.runtime.checkpoint import Checkpoint, CheckpointError
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.nodes.qwen3.talker_context import user_turn_mask
from omnigraph.testing import graph_from_yaml
from omnigraph.runtime.executor_local import LocalExecutor

rope = lambda theta, section: {"rope_parameters": dict(rope_type="default", rope_theta=theta,  # noqa: E731
                                                       mrope_section=section, interleaved=True)}
CONFIGS = {
    # 4 layers, head_dim 32 != 64/4, 8 experts top-2; the Talker reads hidden_states[2]
    "base": with_width(64, {}, 2),
    # head_dim 24, 6 q heads / 3 kv heads, mrope [2,5,5], 16 experts top-4, 3 layers, eps 1e-5, reads the final norm
    "hd24": with_width(96, dict(num_attention_heads=6, num_key_value_heads=3, head_dim=24, num_experts=16,
                                num_experts_per_tok=4, moe_intermediate_size=48, num_hidden_layers=3,
                                rms_norm_eps=1e-5, **rope(1e6, [2, 5, 5])), 3),
    # 5 layers with a dense one, GQA 8:1, head_dim 16, theta 1e4, top-3 of 6 without renormalisation
    "gqa8_dense": with_width(48, dict(num_attention_heads=8, num_key_value_heads=1, head_dim=16,
                                      num_hidden_layers=5, num_experts=6, num_experts_per_tok=3,
                                      norm_topk_prob=False, mlp_only_layers=[1], intermediate_size=40,
                                      **rope(1e4, [2, 3, 3])), 4),
    # plain multi-head attention, head_dim 40, every second layer sparse, top-1 of 4 experts
    "mha_step2": with_width(80, dict(num_attention_heads=5, num_key_value_heads=5, head_dim=40,
                                     num_experts=4, num_experts_per_tok=1, decoder_sparse_step=2,
                                     intermediate_size=56, moe_intermediate_size=24, rms_norm_eps=1e-5,
                                     **rope(5e5, [6, 7, 7])), 1),
}

PIPELINE = """
inputs: {prompt: interleave.prompt}
nodes:
  interleave: {kind: mrope_interleaver}
  thinker: {kind: thinker, config: {greedy: true, max_new_tokens: 32}}
edges:
  - interleave.thinker_prompt -> thinker.thinker_prompt
outputs: {tokens: thinker.tokens, token_ids: thinker.token_ids}
"""


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "ckpt"
    oracle = saved_oracle(CONFIGS[request.param], path)
    ckpt = Checkpoint.open(path)
    return oracle, ckpt, load_thinker(ckpt)


def test_args_follow_the_config(pair):
    oracle, ckpt, ours = pair
    text = oracle.config.thinker_config.text_config
    a = ours.args
    assert (a.dim, a.n_layers, a.n_heads, a.n_kv_heads, a.head_dim) == (
        text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads, text.head_dim)
    assert ThinkerArgs.from_hf_config(ckpt.config["thinker_config"]) == a


def test_logits_and_hidden_states_match_oracle(pair):
    oracle, ckpt, ours = pair
    k = ckpt.config["talker_config"]["accept_hidden_layer"]
    ids = torch.tensor([CHAT])
    with torch.inference_mode():
        ref = oracle.thinker(input_ids=ids, output_hidden_states=True)
        pos = torch.arange(ids.shape[1]).float().expand(3, 1, -1)
        trace = HiddenTrace(layer=k)
        hidden = ours.hidden(ours.embed_tokens(ids), pos, trace=trace)
        logits = ours.head(hidden)
        cache = ours.new_cache()
        rows = cache.rows([cache.add(ids.shape[1])], ids.shape[1])
        last = ours.head(ours.hidden(ours.embed_tokens(ids), pos, cache, rows=rows)[:, -1])
    assert len(ref.hidden_states) == ours.args.n_layers + 1
    torch.testing.assert_close(trace.embeds[0], ref.hidden_states[0], atol=0, rtol=0)
    torch.testing.assert_close(trace.hidden[0], ref.hidden_states[k], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden, ref.hidden_states[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, ref.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last, ref.logits[:, -1], atol=1e-5, rtol=1e-5)
    assert ref.logits.std() > 0.05  # the comparison is not between near-zero numbers


@pytest.mark.parametrize("penalty", [1.0, 1.3])  # greedy search applies a repetition penalty too
def test_greedy_generation_matches_oracle_token_for_token(pair, penalty):
    oracle, ckpt, _ = pair
    ids = torch.tensor([CHAT])
    with torch.inference_mode():
        ref = oracle.thinker.generate(input_ids=ids, max_new_tokens=32, do_sample=False, eos_token_id=151645,
                                      repetition_penalty=penalty)
    ref = ref[0, ids.shape[1]:].tolist()
    graph = graph_from_yaml(PIPELINE.replace("greedy: true", f"greedy: true, repetition_penalty: {penalty}"))
    out = LocalExecutor(graph, checkpoint=ckpt).run({"prompt": PromptTokens(torch.tensor(CHAT))}).outputs
    assert len(ref) == 32 and 151645 not in ref
    assert [t.id for t in out["tokens"]] == ref and list(out["token_ids"].ids) == ref


def test_mismatched_checkpoint_is_reported_with_shapes(pair, tmp_path):
    _, ckpt, _ = pair
    import json
    import os

    bad = dict(ckpt.config)
    bad["thinker_config"] = {**bad["thinker_config"],
                             "text_config": {**bad["thinker_config"]["text_config"], "moe_intermediate_size": 7}}
    for name in os.listdir(ckpt.path):
        if name != "config.json":
            os.symlink(ckpt.path / name, tmp_path / name)
    (tmp_path / "config.json").write_text(json.dumps(bad))
    if all(not s for s in ThinkerArgs.from_hf_config(bad).sparse):
        pytest.skip("no sparse layer")
    with pytest.raises(CheckpointError, match=r"experts\.0\.gate_proj\.weight.*has shape \[\d+, \d+\], expected \[7,"):
        load_thinker(Checkpoint.open(tmp_path))


def test_a_talker_reading_hidden_states_0_gets_the_input_embeddings(pair, tmp_path):
    """accept_hidden_layer 0 names hidden_states[0], the input embeddings: the trace keeps them for the prompt
    and the decode steps, and the thinker node hands its Talker context on (it failed on an empty trace)."""
    oracle, ckpt, ours = pair
    ids = torch.tensor([CHAT])
    with torch.inference_mode():
        ref = oracle.thinker(input_ids=ids, output_hidden_states=True)
        trace, cache = HiddenTrace(layer=0), ours.new_cache()
        slot = cache.add(ids.shape[1] + 1)
        ours.hidden(ours.embed_tokens(ids), torch.arange(ids.shape[1]).float().expand(3, 1, -1), cache, trace=trace,
                    rows=cache.rows([slot], ids.shape[1]), last_only=True)
        ours.decode_hidden(ids[:, -1], torch.tensor([float(ids.shape[1])]), cache, cache.rows([slot], 1), trace)
    embeds, hidden = trace.stacked()
    assert hidden.shape[1] == ids.shape[1] + 1
    torch.testing.assert_close(hidden, embeds, atol=0, rtol=0)
    torch.testing.assert_close(hidden[:, :-1], ref.hidden_states[0], atol=0, rtol=0)

    edited = with_config_edit(ckpt.path, tmp_path / "layer0",
                              lambda config: config["talker_config"].update(accept_hidden_layer=0))
    graph = graph_from_yaml(PIPELINE.replace("outputs: {", "outputs: {context: thinker.talker_context, "),
                            overrides={("thinker", "max_new_tokens"): 2})
    out = LocalExecutor(graph, checkpoint=Checkpoint.open(edited)).run({"prompt": PromptTokens(ids[0])}).outputs
    keep = user_turn_mask(ids[0], 151644, 872)
    torch.testing.assert_close(out["context"].embeds, ref.hidden_states[0][0, keep], atol=0, rtol=0)


def test_a_talker_layer_past_the_thinker_is_a_config_error(pair, tmp_path):
    """accept_hidden_layer beyond num_hidden_layers fails at load, naming the field (it failed mid-run)."""
    from omnigraph.nodes.thinker.node import Thinker

    _, ckpt, ours = pair
    past = ours.args.n_layers + 1
    edited = with_config_edit(ckpt.path, tmp_path / "past",
                              lambda config: config["talker_config"].update(accept_hidden_layer=past))
    with pytest.raises(CheckpointError, match=rf"config.json: talker_config.accept_hidden_layer = {past}: "
                                              r"must be 0 to the Thinker's num_hidden_layers"):
        Thinker().load("cpu", Checkpoint.open(edited))
