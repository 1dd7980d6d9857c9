"""Concurrent runs on one loaded Qwen2.5 Talker share its decode steps (the lockstep rule) and keep their codes:
prompts, replies, voices, budgets and sampling settings differ per run (greedy and seeded sampling in one
batch); a cancelled and a failing run change no other; max_batch bounds the batches (counted)."""
import copy
import threading

import pytest
from held_batch import WAIT, HeldFirstBatch, outcome, wait_until

from omnigraph.nodes.qwen2_5_talker.node import Qwen25Talker
from omnigraph.runtime.context import RunContext, enter_run
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.payloads import Text

RUNS = [  # (prompt cut, reply states, voice, config, seed)
    (0, 4, "Chelsie", {"greedy": True, "max_codes": 9}, 1),
    (2, 3, "Ethan", {"temperature": 1.4, "top_k": 0, "top_p": 1.0, "max_codes": 7}, 2),
    (4, 2, "Chelsie", {"temperature": 1.1, "top_k": 6, "top_p": 0.9, "repetition_penalty": 1.3, "max_codes": 11}, 3),
    (1, 4, "Ethan", {"greedy": True, "repetition_penalty": 1.5, "max_codes": 6}, 4),
]


def loaded(ckpt, **config) -> Qwen25Talker:
    node = Qwen25Talker(Qwen25Talker.Config(**config))
    node.load("cpu", ckpt)
    return node


def with_config(node: Qwen25Talker, config: dict) -> Qwen25Talker:
    """The loaded node with other settings, sharing its server (as runs of one node with their own settings)."""
    other = copy.copy(node)
    other.config = Qwen25Talker.Config(**{**node.config.model_dump(), **config})
    return other


def speak(node, run, spec, cancel_after: int | None = None, bad_state: int | None = None) -> list[int]:
    """One run's codes, in this thread as the run of `spec`'s seed; `cancel_after` codes: cancelled there."""
    cut, replies, voice, config, seed = spec
    context = RunContext(run_id=f"run{seed}", node="talker", seed=seed)
    enter_run(context)
    p = run.prompt
    prompt = type(p)(p.states[cut:], p.input_ids[cut:], p.positions[:, cut:] - cut, p.rope_delta)
    states = list(run.states[:replies])
    if bad_state is not None:
        states[bad_state] = type(states[0])(states[0].token_id, states[0].state[:3])
    codes = []
    for port, item in with_config(node, config).stream(prompt, iter(states), Text(voice)):
        if port == "codes":
            codes.append(item.id)
            if len(codes) == cancel_after:
                context.cancelled.set()
    return codes


def concurrently(node, run, calls) -> list:
    """calls[i](node, run) from their own threads, their prefills queued together (the first held until the
    others queue) -> each one's codes or exception."""
    gate, results = HeldFirstBatch(node._server._batcher), [None] * len(calls)

    def start(i):
        results[i] = outcome(lambda: calls[i](node, run))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(calls))]
    threads[0].start()
    assert gate.started.wait(WAIT)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: len(node._server._batcher._waiting) == len(calls) - 1, "the prefills queued")
    gate.release.set()
    for t in threads:
        t.join(WAIT)
    return results


def test_concurrent_runs_equal_the_same_runs_alone(setup):
    ckpt, run = setup
    node = loaded(ckpt)
    alone = [speak(node, run, spec) for spec in RUNS]
    assert len({tuple(c) for c in alone}) == len(RUNS) and all(len(c) > 1 for c in alone)
    got = concurrently(node, run, [lambda n, r, spec=spec: speak(n, r, spec) for spec in RUNS])
    assert got == alone
    assert node._server.peak_batch > 1 and node._server.live_slots == 0


def test_a_cancelled_and_a_failing_run_change_no_other_and_max_batch_bounds_the_batches(setup):
    ckpt, run = setup
    node = loaded(ckpt, max_batch=2)
    alone = [speak(node, run, spec) for spec in RUNS]
    calls = [lambda n, r: speak(n, r, RUNS[0], cancel_after=3),
             lambda n, r: speak(n, r, RUNS[1]),
             lambda n, r: speak(n, r, RUNS[0], bad_state=2),
             lambda n, r: speak(n, r, RUNS[3])]
    cancelled, second, failing, fourth = concurrently(node, run, calls)
    assert cancelled == alone[0][:3] and [second, fourth] == [alone[1], alone[3]]
    assert isinstance(failing, UserError) and "states item 2" in str(failing)
    assert node._server.peak_batch == 2 and node._server._batcher.peak_batch == 2
    assert node._server.live_slots == 0
