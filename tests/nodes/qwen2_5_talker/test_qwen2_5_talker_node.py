"""The Qwen2.5-Omni Talker node: states read only when needed, no states no codes, seeded sampling, concurrent
runs batched with the results of runs alone, located errors, the checkpoint probe."""
import threading

import pytest
import torch

from omnigraph.nodes.qwen2_5_talker.node import Qwen25Talker
from omnigraph.nodes.qwen2_5_talker.prompt import prefill_inputs
from omnigraph.nodes.common.decode_buffers import TokenHistory
from omnigraph.nodes.common.row_choice import RowChoice
from omnigraph.nodes.common.sampling import SamplingParams
from omnigraph.nodes.qwen2_5_talker.server import Prefill, Release, Step, Voice
from omnigraph.runtime.checkpoint_check import CheckpointProbe
from omnigraph.runtime.errors import UserError
from omnigraph.testing import run_node


@pytest.fixture(scope="module")
def node(setup):
    node = Qwen25Talker(Qwen25Talker.Config(greedy=True, max_codes=8))
    node.load("cpu", setup[0])
    return node


def test_states_are_read_only_when_a_step_needs_them(setup, node):
    _, run = setup
    log = []

    def states():
        for j, s in enumerate(run.states):
            log.append(("state", j))
            yield s

    for port, item in node.stream(run.prompt, states()):
        log.append(("code",) if port == "codes" else (port,))
    codes = [e for e in log if e == ("code",)]
    assert len(codes) >= 4
    # the prefill takes reply_0; step s (after code s-1) takes reply_s: never read ahead
    expected = [("state", 0)]
    for j in range(1, len(run.states)):
        expected += [("code",), ("state", j)]
    assert log[:len(expected)] == expected


def test_no_states_no_codes(setup):
    ckpt, run = setup
    out = run_node("qwen2_5_talker", {"talker_prompt": run.prompt, "states": []}, {"greedy": True}, checkpoint=ckpt)
    assert out["codec_codes"].ids == () and out.get("codes", []) == []


def test_sampling_is_seeded_by_the_run(setup):
    ckpt, run = setup
    draw = lambda seed: run_node("qwen2_5_talker", {"talker_prompt": run.prompt, "states": run.states},  # noqa: E731
                                 {"max_codes": 10, "temperature": 1.5, "top_k": 0, "top_p": 1.0},
                                 checkpoint=ckpt, seed=seed)["codec_codes"].ids
    assert draw(1) == draw(1) and draw(1) != draw(2)


def test_batched_steps_equal_steps_alone(setup, node):
    """Three runs of different prompt lengths: prefills, then decode steps computed as one batch (ragged
    cache lengths) and one by one give the same logits."""
    _, run = setup
    model, server = node._model, node._server
    prompts = []
    for cut in (0, 2, 4):
        p = run.prompt
        prompts.append(type(p)(p.states[cut:], p.input_ids[cut:], p.positions[:, cut:] - cut, p.rope_delta))
    greedy = SamplingParams(greedy=True)
    voices = [Voice(RowChoice(greedy, None, 1.0, TokenHistory("cpu"))) for _ in prompts]
    logits = []
    decode = server._decode
    server._decode = lambda steps: logits.append(decode(steps)) or logits[-1]
    with torch.inference_mode():
        for voice, p in zip(voices, prompts):
            server._run_batch([Prefill(voice, *prefill_inputs(model, p, node._speaker_embed(None),
                                                              run.states[0].state), 64)])
        for i, voice in enumerate(voices):
            voice.last = 100 + i
        steps = [Step(voice, run.states[1].state, 20 + i) for i, voice in enumerate(voices)]
        server._run_batch(steps[::-1])
        batched = logits.pop()[::-1]
        for voice in voices:
            server._cache.truncate(voice.slot, server._cache.lengths[voice.slot] - 1)
            voice.last = 100 + voices.index(voice)
        for step in steps:
            server._run_batch([step])
        server._run_batch([Release(voice) for voice in voices])
    assert server.live_slots == 0
    for a, (b,) in zip(batched, logits):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_concurrent_runs_get_their_codes_alone(setup, node):
    _, run = setup
    alone = [item.id for port, item in node.stream(run.prompt, iter(run.states)) if port == "codes"]
    results = [None] * 3

    def speak(i):
        results[i] = [item.id for port, item in node.stream(run.prompt, iter(run.states)) if port == "codes"]

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [alone] * 3


def test_unknown_speaker_and_probe(setup):
    ckpt, _ = setup
    with pytest.raises(UserError, match="unknown speaker 'ethan'.*did you mean 'Ethan'"):
        Qwen25Talker(Qwen25Talker.Config(speaker="ethan")).load("cpu", ckpt)
    probe = CheckpointProbe.open(ckpt.path)
    Qwen25Talker().check_checkpoint(probe)
    assert probe.problems == [] and "thinker.model.embed_tokens.weight" in probe.fitting


def test_misshaped_inputs_are_user_errors(setup, node):
    _, run = setup
    p = run.prompt
    bad_prompt = type(p)(p.states[:, :10], p.input_ids, p.positions, p.rope_delta)
    with pytest.raises(UserError, match=r"talker_prompt.states has shape \[\d+, 10\]; this Talker takes \[P, 64\]"):
        list(node.stream(bad_prompt, iter(run.states)))
    bad_state = type(run.states[1])(run.states[1].token_id, run.states[1].state[:7])
    with pytest.raises(UserError, match=r"states item 1 \(token \d+\) has a state of shape \[7\]"):
        list(node.stream(p, iter([run.states[0], bad_state])))


def test_bfloat16_runs(setup):
    ckpt, run = setup
    out = run_node("qwen2_5_talker", {"talker_prompt": run.prompt, "states": run.states},
                   {"greedy": True, "dtype": "bfloat16", "max_codes": 4}, checkpoint=ckpt)
    assert 1 <= len(out["codec_codes"].ids) <= 4


def test_talker_defaults_of_the_config():
    from omnigraph.nodes.qwen2_5_talker.model import TalkerArgs

    config = {"talker_config": {"vocab_size": 8448, "hidden_size": 32, "num_hidden_layers": 1, "head_dim": 128,
                                "num_attention_heads": 2, "embedding_size": 64, "rope_parameters": {}}}
    args = TalkerArgs.from_hf_config(config)
    assert args.text.mrope_section == (16, 24, 24) and args.text.attention_bias and args.ids.codec_eos == 8294


def test_eos_and_suppressed_ids_are_settings(setup):
    ckpt, run = setup
    speak = lambda config: run_node("qwen2_5_talker", {"talker_prompt": run.prompt, "states": run.states},  # noqa: E731
                                    {"greedy": True, "max_codes": 4, **config}, checkpoint=ckpt)["codec_codes"].ids
    first = speak({})[0]
    assert speak({"eos_ids": [first]}) == ()
    assert speak({"suppress_ids": [first]})[0] != first
    with pytest.raises(UserError, match=r"eos_ids \[9000\] must be codec ids in \[0, 8448\)"):
        Qwen25Talker(Qwen25Talker.Config(eos_ids=[9000])).load("cpu", ckpt)
