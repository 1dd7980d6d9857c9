"""The Qwen2.5-Omni Talker against transformers 5.23 on two tiny configs: prefill and decode logits within
1e-4 of the intended (masked) path, greedy codes identical to `talker.generate` with the documented
workaround, and the workaround shown to restore transformers' own masked path."""
import pytest
import torch
from oracle25 import VARIANT
from talker25_oracle import (codes_until_eos, perturbed_model, save_checkpoint, talker_generate, thinker_run)

from omnigraph.nodes.qwen2_5.payloads import CodecId
from omnigraph.nodes.qwen2_5_talker.prompt import prefill_inputs, step_position
from omnigraph.nodes.qwen2_5_talker.weights import embedding_rows, load_talker, thinker_embed_table
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.testing import run_node

STEPS = 12


@pytest.fixture(scope="module", params=[None, VARIANT], ids=["base", "variant"])
def oracle(request, tmp_path_factory):
    model = perturbed_model(request.param, seed=4)
    path = save_checkpoint(model, tmp_path_factory.mktemp("talker25") / "ckpt")
    run = thinker_run(model)
    ids, logits = talker_generate(model, run.hf, STEPS)
    return model, Checkpoint.open(path), run, ids, logits


def test_prefill_and_decode_logits_match_the_intended_path(oracle):
    model, ckpt, run, ids, logits = oracle
    ours = load_talker(ckpt)
    speaker = embedding_rows(ckpt, thinker_embed_table(ckpt.config), [model.speaker_map["Chelsie"]["bos_token"]])[0]
    trailing = [s.state for s in run.states[1:]] + [model.thinker.get_input_embeddings().weight[t]
                                                    for t in (151861, 151859)]
    with torch.no_grad():
        inputs, positions = prefill_inputs(ours, run.prompt, speaker, run.states[0].state)
        cache = ours.new_cache()
        slot = cache.add(inputs.shape[1] + STEPS)
        got = [ours.first_logits(inputs, positions, cache, cache.rows([slot], inputs.shape[1]))[0]]
        for s in range(1, len(ids)):
            x = ours.embed_tokens.weight[ids[s - 1]] + trailing[min(s - 1, len(trailing) - 1)]
            position = torch.tensor([float(step_position(run.prompt, s))])
            got.append(ours.step_logits(x[None], position, cache, cache.rows([slot], 1))[0])
    for s, (a, b) in enumerate(zip(got, logits)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0, msg=f"step {s}")


def test_greedy_codes_equal_generate(oracle):
    _, ckpt, run, ids, _ = oracle
    out = run_node("qwen2_5_talker", {"talker_prompt": run.prompt, "states": run.states},
                   {"greedy": True, "max_new_tokens": STEPS}, checkpoint=ckpt)
    expected = codes_until_eos(ids)
    assert len(expected) >= 8  # past the Thinker states, into text_eos / text_pad
    assert out["codec_codes"].ids == tuple(expected)
    assert out.get("codes", []) == [CodecId(c) for c in expected]


def test_the_workaround_restores_the_masked_path(oracle):
    """transformers with the mask put back == its own forward with the mask, step by step; without it (the
    5.23 bug), the prefill logits differ."""
    model, _, run, ids, logits = oracle
    talker, hf = model.talker, run.hf
    with torch.no_grad():
        talker.rope_deltas = None
        first = talker(inputs_embeds=hf["inputs_embeds"].clone(), attention_mask=hf["attention_mask"],
                       input_text_ids=hf["input_text_ids"], image_grid_thw=hf["image_grid_thw"], use_cache=True)
        masked, cache, mask = [first.logits[0, -1]], first.past_key_values, hf["attention_mask"]
        for s in range(1, 4):
            mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], dim=1)
            step = talker(input_ids=torch.tensor([[ids[s - 1]]]), attention_mask=mask, past_key_values=cache,
                          thinker_reply_part=hf["thinker_reply_part"][:, s - 1:], use_cache=True)
            masked.append(step.logits[0, -1])
            cache = step.past_key_values
    for a, b in zip(masked, logits):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    _, unmasked = talker_generate(model, hf, 1, keep_mask=False)
    assert (unmasked[0] - logits[0]).abs().max() > 1e-4
