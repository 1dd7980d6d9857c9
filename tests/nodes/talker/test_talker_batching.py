"""Concurrent runs on one loaded Talker + code predictor share forward passes and keep their outputs: each run's
codes are those of the same run alone (greedy and seeded sampling), the Talker's logits within 1e-4, with
prompts and replies of different lengths, runs joining and leaving mid-batch, a cancelled and a failing run, and
max_batch; through LocalExecutor on a TTS graph and on the qwen3_omni graph."""
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from step_gate import WAIT, HoldFirstBatch, hold_first_batches
from oracle import build_model, save_checkpoint
from talker_oracle import ASSISTANT, IM_END, IM_START, NL, SYSTEM, USER, WORDS, overrides

from omnigraph.nodes.common.sampling import SamplingParams, make_generator
from omnigraph.nodes.talker.node import Talker
from omnigraph.nodes.talker.server import Prefill
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.context import current_run
from omnigraph.runtime.errors import NodeFailed, RunCancelled
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.payloads import AudioChunk
from omnigraph.nodes.common.token_payloads import TokenId
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.testing import graph_from_yaml
from test_talker_node import TTS  # the Talker <-> code predictor loop graph

SETTINGS = {  # talker config, code predictor config
    "greedy": ({"greedy": True, "max_frames": 12}, {"greedy": True}),
    "sampled": ({"max_frames": 12, "temperature": 1.3, "top_k": 40, "top_p": 0.9, "repetition_penalty": 1.2},
                {"temperature": 1.2, "top_k": 30, "top_p": 0.9}),
}
RUNS = [(9, 6, 1), (2, 2, 2), (5, 9, 3), (7, 4, 4)]  # (user words, reply tokens, seed): prompts and replies differ


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A Talker whose logits follow its inputs (weights of std 1/sqrt(fan in), not 0.02), so that a run handed
    another run's rows would show."""
    model = build_model(overrides("base"), seed=21)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in [*model.talker.named_parameters(), ("embed", model.thinker.get_input_embeddings().weight)]:
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
            elif "norm" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    model.talker.config.audio_config = model.config.thinker_config.audio_config  # the v5.23 workaround (section 9)
    return Checkpoint.open(save_checkpoint(model, tmp_path_factory.mktemp("batching") / "ckpt"))


def inputs(words: int, reply: int) -> dict:
    chat = [*SYSTEM, IM_START, USER, NL, *WORDS[:words], IM_END, NL, IM_START, ASSISTANT, NL]
    return {"prompt": PromptTokens(torch.tensor(chat)), "tokens": [TokenId(t) for t in (WORDS * 2)[:reply]]}


@pytest.fixture(params=["fused", "unfused"])
def mode(request, monkeypatch):
    """fused: the Talker's server computes the code predictor's frames (both loaded here); unfused: the two
    batch apart, as when they are placed in different processes."""
    if request.param == "unfused":
        monkeypatch.setattr(Talker, "fuse_loop", lambda self, partner: None)
    return request.param


def executor(ckpt, setting: str, **extra) -> tuple[LocalExecutor, dict]:
    """A loaded TTS graph whose Talker records each run's code-0 logits (by run seed)."""
    talker, predictor = SETTINGS[setting]
    ex = LocalExecutor(graph_from_yaml(TTS % (talker | extra, predictor | extra)), device="cpu", checkpoint=ckpt)
    ex.load()
    server, logits, seeds = ex.nodes["talker"]._server, {}, {}

    def prefill(voice, *args, inner=server.prefill):
        seeds[id(voice.choice)] = current_run().seed  # in the run's thread
        return inner(voice, *args)

    def frames(items, rows, results, inner=server._frames):
        for i, row_logits, _ in rows:
            logits.setdefault(seeds[id(items[i].voice.choice)], []).append(row_logits[0].clone())
        return inner(items, rows, results)

    server.prefill, server._frames = prefill, frames
    return ex, logits


def codes(run) -> list:
    return list(run.result(WAIT).outputs["codes"].frames)


def alone(ckpt, setting: str, runs=RUNS) -> tuple[list, dict]:
    ex, logits = executor(ckpt, setting)
    return [codes(ex.start(inputs(w, r), seed=s)) for w, r, s in runs], logits


def assert_logits_close(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for seed in want:
        assert len(got[seed]) == len(want[seed])
        for a, b in zip(got[seed], want[seed]):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def servers_idle(ex) -> bool:
    return ex.nodes["talker"]._server.live_slots == 0


@pytest.mark.usefixtures("mode")
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_concurrent_runs_equal_the_same_runs_alone(ckpt, setting):
    want, want_logits = alone(ckpt, setting)
    assert all(len(c) == 12 for c in want)
    assert len({tuple(c) for c in want}) == len(want)
    ex, logits = executor(ckpt, setting)
    hold_first_batches(ex.nodes["talker"], ex.nodes["code_predictor"], len(RUNS))
    runs = [ex.start(inputs(w, r), seed=s) for w, r, s in RUNS]
    assert [codes(run) for run in runs] == want
    assert_logits_close(logits, want_logits)
    assert ex.nodes["talker"]._server.peak_batch > 1 and ex.nodes["code_predictor"]._server.peak_batch > 1
    assert servers_idle(ex)


@pytest.mark.usefixtures("mode")
def test_max_batch_bounds_both_batches(ckpt):
    want, _ = alone(ckpt, "sampled")
    ex, _ = executor(ckpt, "sampled", max_batch=2)
    hold_first_batches(ex.nodes["talker"], ex.nodes["code_predictor"], len(RUNS))
    runs = [ex.start(inputs(w, r), seed=s) for w, r, s in RUNS]
    assert [codes(run) for run in runs] == want
    assert ex.nodes["talker"]._server.peak_batch == 2 and ex.nodes["code_predictor"]._server.peak_batch == 2


def pause_before_step(server, seed: int, count: int) -> threading.Event:
    """The run of `seed` waits before its `count`-th decode step until it is cancelled; -> an event set once it
    waits there."""
    inner, calls, paused = server.step, [], threading.Event()

    def paused_step(*args):
        run = current_run()
        if run.seed == seed:
            calls.append(None)
            if len(calls) == count:
                paused.set()
                assert run.cancelled.wait(WAIT)
        return inner(*args)

    server.step = paused_step
    return paused


@pytest.mark.usefixtures("mode")
def test_runs_join_and_leave_mid_batch_and_a_cancelled_or_failing_run_changes_no_other(ckpt):
    want, want_logits = alone(ckpt, "greedy")
    ex, logits = executor(ckpt, "greedy")
    server, leaving = ex.nodes["talker"]._server, RUNS[0][2]
    gate = hold_first_batches(ex.nodes["talker"], ex.nodes["code_predictor"], 2)
    paused = pause_before_step(server, leaving, 5)
    first = [ex.start(inputs(w, r), seed=s) for w, r, s in RUNS[:2]]
    assert gate.held.wait(WAIT)  # the first two step together: the others join mid-batch
    bad = inputs(3, 6)
    bad["tokens"][3] = TokenId(10 ** 9)  # outside the Thinker vocabulary: this run fails at its third step
    failing = ex.start(bad, seed=9)
    later = [ex.start(inputs(w, r), seed=s) for w, r, s in RUNS[2:]]
    assert paused.wait(WAIT)
    first[0].cancel()  # leaves mid-batch, after 5 frames
    with pytest.raises(RunCancelled):
        first[0].result(WAIT)
    with pytest.raises(NodeFailed, match="outside the Thinker vocabulary"):
        failing.result(WAIT)
    assert [codes(run) for run in [first[1], *later]] == want[1:]
    assert len(logits.pop(9)) == 3 and len(logits[leaving]) == 6  # the prefill and the steps before each left
    logits[leaving] += want_logits[leaving][6:]
    assert_logits_close(logits, want_logits)
    assert servers_idle(ex)


def test_concurrent_qwen3_omni_runs_equal_the_same_runs_one_by_one(mode):
    from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
    from omnigraph.runtime.validate import load_graph

    checkpoint = Checkpoint.open(default_checkpoint())
    graph = load_graph("qwen3_omni", overrides={("thinker", "max_new_tokens"): 6, ("talker", "max_frames"): 6})
    ex = LocalExecutor(graph, device="cpu", checkpoint=checkpoint)
    texts = [("Hello.", 1), ("Name three colours, please.", 2), ("Why?", 3), ("Count to five slowly now.", 4)]
    outputs = lambda run: run.result(WAIT).outputs  # noqa: E731
    want = [outputs(ex.start({"text": t}, seed=s)) for t, s in texts]
    hold_first_batches(ex.nodes["talker"], ex.nodes["code_predictor"], len(texts))
    got = [outputs(run) for run in [ex.start({"text": t}, seed=s) for t, s in texts]]
    assert [g["codec_codes"] for g in got] == [w["codec_codes"] for w in want]
    assert [g["thinker_token_ids"] for g in got] == [w["thinker_token_ids"] for w in want]
    for g, w in zip(got, want):  # fused, Code2Wav decodes the frames of a Talker batch together (announced)
        torch.testing.assert_close(AudioChunk.join(g["audio"]).samples, AudioChunk.join(w["audio"]).samples,
                                   atol=1e-5, rtol=0)
    assert bool(ex.nodes["talker"]._readers) == (mode == "fused")
    assert len({w["codec_codes"] for w in want}) == len(texts)  # sampled, each run its own seed
    assert ex.nodes["talker"]._server.peak_batch > 1 and ex.nodes["code_predictor"]._server.peak_batch > 1
    assert servers_idle(ex)


@pytest.mark.usefixtures("mode")
def test_a_run_waiting_for_text_does_not_hold_the_others(ckpt):
    """The slow run waits for its 4th token after its first step; the other run ends meanwhile (were batches
    waiting for the slow run's step, it could not)."""
    (want_slow, want_fast), _ = alone(ckpt, "greedy", [RUNS[0], RUNS[1]])
    ex, _ = executor(ckpt, "greedy")
    release, slow_inputs = threading.Event(), inputs(*RUNS[0][:2])

    def slow_tokens():
        yield from slow_inputs["tokens"][:3]
        assert release.wait(WAIT)
        yield from slow_inputs["tokens"][3:]

    slow = ex.start(slow_inputs | {"tokens": slow_tokens()}, seed=RUNS[0][2])
    fast = ex.start(inputs(*RUNS[1][:2]), seed=RUNS[1][2])
    assert codes(fast) == want_fast
    release.set()
    assert codes(slow) == want_slow


# (prompt positions, frame budget, talker settings, code predictor settings, seed): one scheduler, runs of their own
VOICES = [(7, 9, SamplingParams(greedy=True), SamplingParams(greedy=True), 1),
          (12, 4, SamplingParams(temperature=1.3, top_k=40), SamplingParams(temperature=1.2, top_k=30), 2),
          (5, 12, SamplingParams(temperature=0.8, top_p=0.9), SamplingParams(greedy=True), 3),
          (9, 6, SamplingParams(greedy=True), SamplingParams(temperature=1.0, top_k=20, top_p=0.8), 4),
          (6, 10, SamplingParams(temperature=1.0), SamplingParams(temperature=0.7), 5)]


def speak_on(server, talker, prompt: int, budget: int, params, cp_params, seed: int, steps=None) -> list:
    """One run driven on the fused server directly: its frames' codes (a run of its own settings, budget and
    seeds); `steps`, when given, is set once the run has asked for its first step."""
    from omnigraph.nodes.common.decode_buffers import TokenHistory
    from omnigraph.nodes.common.row_choice import RowChoice
    from omnigraph.nodes.talker.server import Voice

    g = torch.Generator().manual_seed(seed)
    C, Vt = talker._model.args.text.dim, talker._table.shape[0]
    embeds = torch.randn(1, prompt, C, generator=g)
    positions = torch.arange(prompt, dtype=torch.float32).expand(3, 1, prompt).contiguous()
    text = torch.randint(0, Vt, (budget,), generator=g).tolist()
    voice = Voice(RowChoice(params, None if params.greedy else make_generator(seed), 1.1, TokenHistory("cpu")),
                  (cp_params, None if cp_params.greedy else make_generator(seed + 100)))
    frames, out = [], server.prefill(voice, embeds, positions, prompt + budget).result(WAIT)
    try:
        for s in range(budget):
            if out.code0 == server.eos:
                break
            frames.append(out.codes)
            if s + 1 == budget:
                break
            pending = server.step(voice, text[s], prompt + s)
            if steps is not None:
                steps.set()
            out = pending.result(WAIT)
    finally:
        server.release(voice)
    return frames


def test_one_scheduler_serves_runs_of_different_budgets_and_settings_as_each_alone(ckpt):
    """Runs joining (two after the others stepped), leaving at their own budgets, each with its own settings:
    both the Talker decode and the code predictor frame of every batch hold every run in step."""
    ex, _ = executor(ckpt, "greedy")
    talker, server = ex.nodes["talker"], ex.nodes["talker"]._server
    assert server.predictor is not None  # loaded in one process: fused
    want = [speak_on(server, talker, *v) for v in VOICES]
    assert len({len(w) for w in want}) > 2 and all(all(len(f) == 4 for f in w) for w in want)
    hold = HoldFirstBatch(server._batcher, Prefill, 3)
    with ThreadPoolExecutor(len(VOICES)) as pool:
        stepping = [threading.Event() for _ in VOICES[:3]]
        first = [pool.submit(speak_on, server, talker, *v, steps=e) for v, e in zip(VOICES[:3], stepping)]
        assert hold.held.wait(WAIT) and all(e.wait(WAIT) for e in stepping)
        later = [pool.submit(speak_on, server, talker, *v) for v in VOICES[3:]]  # join mid-batch
        got = [f.result(WAIT) for f in first + later]
    assert got == want
    assert server.peak_batch >= 3 and ex.nodes["code_predictor"]._server.peak_batch >= 3
    assert servers_idle(ex)


def record_prefill_rows(ex, fail_together: bool = False) -> list[int]:
    """The rows of each Talker prefill call from now on; `fail_together`: a call of several rows raises."""
    model, rows = ex.nodes["talker"]._model, []

    def first_step(embeds, *args, inner=model.first_step):
        rows.append(embeds.shape[0])
        if fail_together and embeds.shape[0] > 1:
            raise RuntimeError("a padded prefill failed")
        return inner(embeds, *args)

    model.first_step = first_step
    return rows


@pytest.mark.parametrize("fail_together", [False, True], ids=["padded", "padded_call_fails"])
def test_newcomers_prefills_in_one_batch_are_one_padded_call(ckpt, fail_together):
    want, want_logits = alone(ckpt, "sampled")
    ex, logits = executor(ckpt, "sampled")
    rows = record_prefill_rows(ex, fail_together)
    hold_first_batches(ex.nodes["talker"], ex.nodes["code_predictor"], len(RUNS))
    runs = [ex.start(inputs(w, r), seed=s) for w, r, s in RUNS]
    assert [codes(run) for run in runs] == want
    assert_logits_close(logits, want_logits)
    if fail_together:  # every prompt again on its own: the runs' outputs do not change
        assert rows.count(1) == len(RUNS) and max(rows) > 1
    else:  # the first batch's prefill(s), then the rest queued behind it: two calls for four prompts
        assert sum(rows) == len(RUNS) and len(rows) <= 2
    assert servers_idle(ex)


def test_a_newcomers_prefill_joins_the_next_step_of_the_runs_in_step(ckpt):
    """Fused: while a run in step has its frame and has not called again, a newcomer's prefill waits for that call
    and goes in one batch with it (one code predictor frame for both rows); the codes are those of each alone."""
    (want_first, want_new), _ = alone(ckpt, "greedy", RUNS[:2])
    ex, _ = executor(ckpt, "greedy")
    server, batches = ex.nodes["talker"]._server, []
    inner_step, inner_batch = server.step, server._batcher.run_batch
    holding, release = threading.Event(), threading.Event()

    def step(*args):  # the first run stops before its 3rd step: out, its next call not made yet
        if current_run().seed == RUNS[0][2] and server._batcher.peak_batch == 1 and len(batches) == 3:
            holding.set()
            assert release.wait(WAIT)
        return inner_step(*args)

    def run_batch(items):
        batches.append({type(i).__name__ for i in items})
        return inner_batch(items)

    server.step, server._batcher.run_batch = step, run_batch
    first = ex.start(inputs(*RUNS[0][:2]), seed=RUNS[0][2])
    assert holding.wait(WAIT)
    newcomer = ex.start(inputs(*RUNS[1][:2]), seed=RUNS[1][2])
    tick = threading.Event()
    for _ in range(WAIT * 1000):  # the newcomer's prefill queues, and is not computed while the first run is out
        if any(isinstance(w.item, Prefill) for w in list(server._batcher._waiting)):
            break
        tick.wait(0.001)
    assert len(batches) == 3
    release.set()
    assert codes(first) == want_first and codes(newcomer) == want_new
    assert batches[3] == {"Step", "Prefill"}
    assert servers_idle(ex)
