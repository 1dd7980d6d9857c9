"""Continuous batching of the Thinker: every run's tokens and logits are those of the same run alone, with
sequences joining and leaving mid-batch, per-run sampling settings and budgets, cancellation, a failing run,
and max_batch; through the engine, the node, and LocalExecutor on the captioner graph."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from thinker_oracle import saved_oracle, with_width

from omnigraph.nodes.common.engine import BatchingEngine, GenerationRequest
from omnigraph.nodes.common.sampling import SamplingParams, make_generator
from omnigraph.nodes.common.screened_head import screen_serves
from omnigraph.nodes.thinker.batch_model import ThinkerBatchModel, ThinkerInputs
from omnigraph.nodes.thinker.model import HiddenTrace
from omnigraph.nodes.thinker.node import Thinker
from omnigraph.nodes.thinker.weights import load_thinker
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.context import RunContext, enter_run
from omnigraph.nodes.qwen.payloads import ThinkerPrompt

WAIT = 120  # seconds: the bound on waiting for a condition (never reached unless something hangs)
GREEDY = SamplingParams(greedy=True)
HOT = SamplingParams(temperature=1.5)
NUCLEUS = SamplingParams(temperature=0.8, top_k=5, top_p=0.8, repetition_penalty=1.3)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("batching") / "ckpt"
    saved_oracle(with_width(64, dict(num_hidden_layers=2), 1), path, seed=5)
    return Checkpoint.open(path)


@pytest.fixture(scope="module")
def model(ckpt):
    return load_thinker(ckpt)


def prompt(model, length: int, seed: int, visual: int = 0) -> ThinkerPrompt:
    """A prompt of `length` tokens; `visual` > 0: that many visual positions (a 2 x visual/2 grid: ragged MRoPE
    positions and a rope delta) with deepstack features for both layers."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 1000, (length,), generator=g)
    embeds = model.embed_tokens.weight[ids].detach().clone()
    positions = torch.arange(length).float().expand(3, -1).clone()
    mask, deepstack, delta = None, (), 0.0
    if visual:
        mask = torch.zeros(length, dtype=torch.bool)
        mask[2:2 + visual] = True
        grid = torch.arange(visual)
        positions[:, 2:2 + visual] = torch.stack([torch.zeros(visual), grid // (visual // 2), grid % (visual // 2)]) + 2
        positions[:, 2 + visual:] = torch.arange(length - 2 - visual).float() + positions[:, :2 + visual].max() + 1
        delta = float(positions.max()) + 1 - length
        deepstack = tuple(torch.randn(visual, embeds.shape[1], generator=g) for _ in range(2))
    return ThinkerPrompt(ids, embeds, positions, delta, visual_mask=mask, deepstack=deepstack)


def request(p: ThinkerPrompt, params: SamplingParams, budget: int, seed: int) -> GenerationRequest:
    inputs = ThinkerInputs(p.embeds[None], p.positions[:, None], p.rope_delta,
                           None if p.visual_mask is None else p.visual_mask[None], p.deepstack)
    return GenerationRequest(prompt_len=p.embeds.shape[0], max_new_tokens=budget, params=params,
                             generator=None if params.greedy else make_generator(seed), stop_ids=frozenset(),
                             cancelled=threading.Event(), prompt_ids=p.input_ids, state=inputs)


class Recording:
    """The Thinker's batch model, recording each request's logits rows and each decode's batch size; with
    `hold_at` set, the decode call of that number waits until `release` is set. A step's head reads the decode
    batch's rows, then the request whose prefill completed (engine.py)."""

    def __init__(self, model, hold_at: int | None = None):
        self.inner, self.hold_at = ThinkerBatchModel(model), hold_at
        self.logits, self.batches, self.step, self.heads = {}, [], [], []
        self.reached, self.release = threading.Event(), threading.Event()
        self.decoded = 0

    def new_cache(self):
        return self.inner.new_cache()

    def prefill(self, cache, rows, r, start, count):
        out = self.inner.prefill(cache, rows, r, start, count)
        if start + count == r.prompt_len:
            self.step.append(r)
        return out

    def decode(self, cache, rows, tokens, requests):
        self.batches.append(len(requests))
        if len(self.batches) == self.hold_at:
            self.reached.set()
            assert self.release.wait(WAIT)
        out = self.inner.decode(cache, rows, tokens, requests)
        self.step += requests
        self.decoded = len(requests)
        return out

    def head(self, hidden):
        out = self.inner.head(hidden)
        assert len(self.step) == len(out)
        for r, row in zip(self.step, out):
            self.logits.setdefault(id(r), []).append(row)
        self.heads.append((self.decoded, len(out)))  # (decode rows, head rows) of the step
        self.step, self.decoded = [], 0
        return out


def alone(model, make) -> tuple[list[list[int]], list[list[torch.Tensor]]]:
    """Each request of make() on its own: tokens and logits per request."""
    rec = Recording(model)
    engine = BatchingEngine(rec, max_batch=1)
    rs = make()
    tokens = [list(engine.submit(r)) for r in rs]
    return tokens, [rec.logits[id(r)] for r in rs]


def mixed(model):
    """Different lengths (one chunked), modalities, budgets and sampling settings."""
    specs = [(prompt(model, 9, 1), GREEDY, 12), (prompt(model, 300, 2), HOT, 6),
             (prompt(model, 20, 3, visual=8), NUCLEUS, 9), (prompt(model, 5, 4), HOT, 3),
             (prompt(model, 14, 5, visual=4), GREEDY, 7)]
    return lambda: [request(p, params, budget, seed) for seed, (p, params, budget) in enumerate(specs)]


def assert_same(got_tokens, got_logits, want_tokens, want_logits):
    assert got_tokens == want_tokens
    for got, want in zip(got_logits, want_logits):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_batched_runs_equal_the_same_runs_alone_as_they_join_and_leave(model):
    make = mixed(model)
    want_tokens, want_logits = alone(model, make)
    rec = Recording(model, hold_at=2)
    engine = BatchingEngine(rec, max_batch=8, prefill_chunk=128)
    rs = make()
    streams = [engine.submit(r) for r in rs[:2]]
    assert rec.reached.wait(WAIT)  # the first two are decoding: the others join mid-batch
    streams += [engine.submit(r) for r in rs[2:]]
    rec.release.set()
    got_tokens = [list(s) for s in streams]
    assert_same(got_tokens, [rec.logits[id(r)] for r in rs], want_tokens, want_logits)
    assert max(rec.batches) == 5 and engine.peak_batch == 5
    assert rec.batches[-1] < 5  # runs with smaller budgets left while others went on
    assert any(0 < decoded < rows for decoded, rows in rec.heads)  # a newcomer's first token rode on a decode step


def test_newcomers_arriving_together_are_prefilled_in_one_step(model):
    make = mixed(model)
    want_tokens, want_logits = alone(model, make)
    rec = Recording(model, hold_at=1)
    engine = BatchingEngine(rec, max_batch=8, prefill_chunk=128)
    rs = make()
    streams = [engine.submit(rs[0])]
    assert rec.reached.wait(WAIT)  # the first is decoding; the others arrive together
    streams += [engine.submit(r) for r in rs[1:]]
    rec.release.set()
    assert_same([list(s) for s in streams], [rec.logits[id(r)] for r in rs], want_tokens, want_logits)
    # per step, prefilled rows: the first prompt's; the 300-position prompt's first and second 128-position chunks
    # (each the whole budget); its last 44 positions with the other three prompts (44 + 20 + 5 + 14 <= 128)
    assert [rows - decoded for decoded, rows in rec.heads[:5]] == [1, 0, 0, 0, 4]


class RecordingTogether(Recording):
    """Recording, with the batch model's `prefill_many` (whole prompts in one call) counted."""

    def __init__(self, model, hold_at: int | None = None):
        super().__init__(model, hold_at)
        self.together = []  # the prompt lengths of each prefill_many call

    def prefill_many(self, cache, rows, rs):
        self.together.append([r.prompt_len for r in rs])
        out = self.inner.prefill_many(cache, rows, rs)
        self.step += rs
        return out


def test_whole_prompts_arriving_together_are_prefilled_in_one_call(model):
    specs = [(prompt(model, 9, 1), GREEDY, 4), (prompt(model, 20, 3, visual=8), NUCLEUS, 6),
             (prompt(model, 5, 4), HOT, 5), (prompt(model, 14, 5, visual=4), GREEDY, 7), (prompt(model, 17, 6), HOT, 3)]

    def make():
        rs = [request(p, params, budget, seed) for seed, (p, params, budget) in enumerate(specs)]
        for r in rs:  # the Talker's trace: layer 1's raw output of every prompt position
            r.state.trace = HiddenTrace(1, decode=False)
        return rs

    want_rs, alone_rec = make(), Recording(model)
    engine = BatchingEngine(alone_rec, max_batch=1)
    want_tokens = [list(engine.submit(r)) for r in want_rs]
    rec = RecordingTogether(model, hold_at=1)
    engine = BatchingEngine(rec, max_batch=8)
    rs = make()
    streams = [engine.submit(rs[0])]
    assert rec.reached.wait(WAIT)  # the first is decoding; the other four (two with images) arrive together
    streams += [engine.submit(r) for r in rs[1:]]
    rec.release.set()
    got_tokens = [list(s) for s in streams]
    assert rec.together == [[20, 5, 14, 17]]  # one padded [4, 20] call: 80 positions, 56 real
    assert_same(got_tokens, [rec.logits[id(r)] for r in rs], want_tokens, [alone_rec.logits[id(r)] for r in want_rs])
    for got, want in zip(rs, want_rs):
        for a, b in zip(got.state.trace.stacked(), want.state.trace.stacked()):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def bad_request(model):
    """A prompt whose deepstack has fewer rows than its visual positions: its prefill fails."""
    broken = request(prompt(model, 12, 9, visual=4), GREEDY, 5, 0)
    broken.state.deepstack = tuple(d[:2] for d in broken.state.deepstack)
    return broken


def test_a_bad_prompt_among_newcomers_arriving_together_fails_alone(model):
    make = mixed(model)
    want_tokens, _ = alone(model, make)
    rec = RecordingTogether(model, hold_at=1)
    engine = BatchingEngine(rec, max_batch=8)
    rs = make()
    broken = bad_request(model)
    streams = [engine.submit(rs[0])]
    assert rec.reached.wait(WAIT)
    streams += [engine.submit(r) for r in rs[1:]]
    failing = engine.submit(broken)
    rec.release.set()
    with pytest.raises(RuntimeError):
        list(failing)
    assert [list(s) for s in streams] == want_tokens
    assert rec.together == [[20, 5, 14, 12]]  # after the 300-position prompt's chunks: tried, failed, one by one


def test_max_batch_bounds_the_batch(model):
    make = mixed(model)
    want_tokens, want_logits = alone(model, make)
    rec = Recording(model)
    engine = BatchingEngine(rec, max_batch=2)
    rs = make()
    streams = [engine.submit(r) for r in rs]
    assert_same([list(s) for s in streams], [rec.logits[id(r)] for r in rs], want_tokens, want_logits)
    assert max(rec.batches) == 2 and engine.peak_batch == 2


def test_a_cancelled_or_failing_run_leaves_the_others_unchanged(model):
    make = mixed(model)
    want_tokens, _ = alone(model, make)
    rec = Recording(model, hold_at=1)
    engine = BatchingEngine(rec, max_batch=8)
    rs = make()
    broken = bad_request(model)
    streams = [engine.submit(r) for r in rs]
    failing = engine.submit(broken)
    assert rec.reached.wait(WAIT)
    rs[0].cancelled.set()  # cancelled mid-batch, as run.cancel() does
    rec.release.set()
    with pytest.raises(RuntimeError):
        list(failing)
    got = [list(s) for s in streams]
    assert got[1:] == want_tokens[1:]
    assert len(got[0]) < len(want_tokens[0]) and got[0] == want_tokens[0][:len(got[0])]


def node_run(node: Thinker, p: ThinkerPrompt, seed: int) -> dict:
    enter_run(RunContext(run_id=f"run{seed}", node=node.name, seed=seed))
    out = {}
    for port, item in node.stream(p):
        out.setdefault(port, []).append(item)
    return out


def test_node_runs_share_one_batch_and_keep_their_outputs(ckpt, model):
    node = Thinker(Thinker.Config(max_new_tokens=8, max_batch=4))
    node.load("cpu", ckpt)
    prompts = [prompt(model, 9, 1), prompt(model, 20, 3, visual=8), prompt(model, 5, 4), prompt(model, 30, 6)]
    want = [node_run(node, p, seed) for seed, p in enumerate(prompts)]
    with ThreadPoolExecutor(len(prompts)) as pool:
        got = list(pool.map(lambda a: node_run(node, *a), [(p, seed) for seed, p in enumerate(prompts)]))
    for g, w in zip(got, want):
        assert g["token_ids"] == w["token_ids"] and g["tokens"] == w["tokens"]
        for a, b in zip(g["talker_context"], w["talker_context"]):
            torch.testing.assert_close(a.embeds, b.embeds, atol=0, rtol=0)
            torch.testing.assert_close(a.hidden, b.hidden, atol=1e-5, rtol=1e-5)


def test_concurrent_captioner_runs_equal_the_same_runs_one_by_one():
    from pathlib import Path

    from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
    from omnigraph.runtime.executor_local import LocalExecutor
    from omnigraph.runtime.validate import load_graph

    checkpoint = Checkpoint.open(default_checkpoint("tiny", seed=3))  # written once, as tests/test_graphs_qwen3_omni
    speech = Path(__file__).parents[2] / "fixtures" / "media" / "speech.wav"
    graph = load_graph("captioner", overrides={("thinker", "max_new_tokens"): 10})
    executor = LocalExecutor(graph, checkpoint=checkpoint)
    inputs = [({"audio": str(speech)}, seed) for seed in range(3)] + [({"audio": str(speech), "text": "Hi."}, 7)]
    want = [executor.start(i, seed=s).result(WAIT).outputs for i, s in inputs]
    runs = [executor.start(i, seed=s) for i, s in inputs]
    got = [r.result(WAIT).outputs for r in runs]
    assert [g["thinker_token_ids"] for g in got] == [w["thinker_token_ids"] for w in want]
    assert [g["text"] for g in got] == [w["text"] for w in want]
    assert len({tuple(w["thinker_token_ids"].ids) for w in want}) > 1  # the seeds matter: sampled runs


def test_close_ends_every_sequence_and_waits_for_the_scheduler(model):
    rec = Recording(model, hold_at=1)
    engine = BatchingEngine(rec, max_batch=8)
    stream = engine.submit(request(prompt(model, 9, 1), GREEDY, 50, 0))
    assert rec.reached.wait(WAIT)  # mid-decode
    closing = threading.Thread(target=engine.close)
    closing.start()
    rec.release.set()
    closing.join(WAIT)
    assert not closing.is_alive() and engine._thread is None
    assert 0 < len(list(stream)) < 50  # what was generated before the close
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit(request(prompt(model, 9, 1), GREEDY, 5, 0))


EXIT_MID_DECODE = """
import sys, threading, torch
from omnigraph.nodes.common.engine import BatchingEngine, GenerationRequest
from omnigraph.nodes.common.sampling import SamplingParams

class FreeCache:  # slots that cost nothing
    def add(self, budget): return 0
    def free(self, slot): pass
    def rows(self, slots, count): return None

class Busy:  # a decode step that is always torch work in progress
    def new_cache(self):
        return FreeCache()
    def prefill(self, cache, rows, r, start, count):
        return torch.zeros(1, 8)
    def decode(self, cache, rows, tokens, requests):
        started.set()
        for _ in range(20):
            torch.randn(256, 256) @ torch.randn(256, 256)
        return torch.zeros(len(requests), 8)
    def head(self, hidden):
        return hidden

started = threading.Event()
engine = BatchingEngine(Busy(), max_batch=4)
request = GenerationRequest(prompt_len=1, max_new_tokens=10**6, params=SamplingParams(greedy=True), generator=None,
                            stop_ids=frozenset(), cancelled=threading.Event())
tokens = engine.submit(request)
next(tokens)
assert started.wait(60)
sys.exit(0)  # the scheduler thread is mid-step: exit must wait for it, never abort
"""


def test_the_process_exits_cleanly_while_the_engine_is_mid_step(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "exit_mid_decode.py"
    script.write_text(EXIT_MID_DECODE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr


class FullHead:
    """The Thinker's batch model without `best_head`: every step computes the whole float32 head."""

    def __init__(self, model):
        self.inner = ThinkerBatchModel(model)

    def __getattr__(self, name):
        if name == "best_head":
            raise AttributeError(name)
        return getattr(self.inner, name)


class CountingBest(ThinkerBatchModel):
    def __init__(self, model):
        super().__init__(model)
        self.best_rows = 0

    def best_head(self, hidden, ks):
        self.best_rows += len(ks)
        return super().best_head(hidden, ks)


def test_runs_reading_their_k_best_logits_get_the_tokens_of_the_full_head(model):
    top_k = SamplingParams(temperature=0.9, top_k=20, top_p=0.8)
    specs = [(prompt(model, 9, 1), GREEDY, 12), (prompt(model, 20, 3, visual=8), top_k, 9),
             (prompt(model, 5, 4), top_k, 11), (prompt(model, 14, 5), GREEDY, 7), (prompt(model, 30, 6), top_k, 10)]

    def tokens(batch_model, max_batch):
        engine = BatchingEngine(batch_model, max_batch=max_batch)
        streams = [engine.submit(request(p, params, budget, seed)) for seed, (p, params, budget) in enumerate(specs)]
        return [list(s) for s in streams]

    want = tokens(FullHead(model), 8)
    screened = CountingBest(model)
    assert tokens(screened, 8) == want and tokens(screened, 1) == want
    assert screened.best_rows == 2 * sum(budget for *_, budget in specs)  # every step read the best logits only
    assert model.decode_head().screen is not None or not screen_serves(model.lm_head.weight)
