"""Talker logits against the oracle talker inside the top-level greedy generate: the prefill and every step,
with the prompt built from the thinker node's talker_context (an audio prompt: hidden_projection is used) and
the step inputs from the oracle's own frames. Plus the node's config checks."""
import pytest
import torch
from talker_oracle import oracle_codes, saved_omni
from test_talker_graph import audio_case

from omnigraph.nodes.common import kv_cache
from omnigraph.nodes.mrope_interleaver.node import MropeInterleaver
from omnigraph.nodes.qwen3.thinker_embeddings import load_embed_table
from omnigraph.nodes.talker.node import Talker
from omnigraph.nodes.qwen.special_tokens import media_token_ids
from omnigraph.nodes.talker.prompt import TalkerIds, TextEmbedder, talker_prompt
from omnigraph.nodes.talker.weights import load_talker
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.testing import run_node


@pytest.fixture(scope="module", params=["base", "wide"])
def omni(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "ckpt"
    return saved_omni(request.param, path, seed=5), Checkpoint.open(path)


def test_prefill_and_step_logits_match_oracle(omni, monkeypatch):
    monkeypatch.setattr(kv_cache, "INITIAL_CAPACITY", 1)  # the prefill and the decode steps grow the caches
    model, ckpt = omni
    oracle_inputs, graph_inputs = audio_case(model)
    seen = []
    hook = model.talker.register_forward_hook(lambda mod, args, out: seen.append(out.logits[0, -1].clone()))
    try:
        ref_ids, ref_codes = oracle_codes(model, 5, 7, speaker="ethan", **oracle_inputs)
    finally:
        hook.remove()
    assert len(seen) == 7 and len(ref_codes) == 6

    interleaver = MropeInterleaver()
    interleaver.load("cpu", ckpt)
    prompt = interleaver.process(**graph_inputs)["thinker_prompt"]
    out = run_node("thinker", {"thinker_prompt": prompt}, {"greedy": True, "max_new_tokens": 5}, checkpoint=ckpt)
    assert list(out["token_ids"].ids) == ref_ids
    ctx = out["talker_context"]
    assert ctx.hidden is not None and int(ctx.media_mask.sum()) == graph_inputs["audio"].tokens[0]
    assert ctx.ids[:3].tolist() == [151644, 872, 198]  # the system turn is not part of it

    ours, ids = load_talker(ckpt), TalkerIds.from_hf_config(ckpt.config)
    embed = TextEmbedder(ours, load_embed_table(ckpt))
    with torch.inference_mode():
        x, positions, delta = talker_prompt(ours, embed, ctx, ref_ids[0], 2302, ids,
                                            media_token_ids(ckpt.config["talker_config"]))
        P = x.shape[1]
        cache = ours.new_cache()
        slot = cache.add(P + 8)
        logits, _ = ours.first_step(x, positions, cache, cache.rows([slot], P))
        torch.testing.assert_close(logits[0], seen[0], atol=1e-5, rtol=1e-5)
        trailing = embed([*ref_ids[1:-1], ids.tts_eos, ids.tts_pad, ids.tts_pad, ids.tts_pad])
        for s, frame in enumerate(ref_codes):
            step = ours.frame_embedding(torch.tensor([frame])) + trailing[s]
            position = torch.tensor([P + s + delta], dtype=torch.float32)
            logits, _ = ours.decode_step(step, position, cache, cache.rows([slot], 1))
            torch.testing.assert_close(logits[0], seen[s + 1], atol=1e-5, rtol=1e-5)
        assert cache.lengths[slot] == P + len(ref_codes) <= cache.capacity <= 2 * P


def test_config_errors_are_clear(omni):
    _, ckpt = omni
    node = Talker(Talker.Config(speaker="Nobody"))
    with pytest.raises(UserError, match="unknown speaker 'Nobody'.*aiden, chelsie, ethan"):
        node.load("cpu", ckpt)
    node = Talker(Talker.Config(speaker="AIDEN"))
    node.load("cpu", ckpt)
    assert node._speaker == 2303
    suppressed = node._server.suppress.nonzero()[:, 0].tolist()
    assert suppressed == [i for i in range(2048, 3072) if i != 2150]
