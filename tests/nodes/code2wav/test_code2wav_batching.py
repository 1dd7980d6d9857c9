"""Concurrent runs' Code2Wav streams decoded together: each run's audio is the same as alone, whatever the others
do (join, leave, fail, get cancelled), batches really form and max_batch bounds them, slots are freed at once."""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from c2w_oracle import build_code2wav
from omnigraph.nodes.code2wav.node import Code2WavNode
from omnigraph.nodes.code2wav.stream_batch import Chunk, Stream, StreamBatcher
from omnigraph.nodes.common import step_batcher
from omnigraph.runtime.channels import Cancelled
from omnigraph.runtime.context import RunContext, enter_run
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.nodes.qwen.payloads import CodecFrame
from omnigraph.runtime.payloads import AudioChunk
from omnigraph.testing import graph_from_yaml

G, V, WAIT = 3, 2048, 60


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    overrides = dict(num_quantizers=G, hidden_size=24, num_attention_heads=2, num_key_value_heads=1,
                     intermediate_size=40, sliding_window=4, decoder_dim=32)
    return Checkpoint.open(build_code2wav(tmp_path_factory.mktemp("c2w_batch"), overrides)[1])


def loaded(ckpt, **config) -> Code2WavNode:
    node = Code2WavNode(Code2WavNode.Config(**config))
    node.load("cpu", ckpt)
    return node


def codes(n: int, seed: int) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (n, G), generator=gen).tolist()


def frames(n: int, seed: int) -> list[CodecFrame]:
    return [CodecFrame(i, tuple(c)) for i, c in enumerate(codes(n, seed))]


def audio(node: Code2WavNode, items) -> torch.Tensor:
    return AudioChunk.join([chunk for _, chunk in node.stream(iter(items))]).samples


def test_streams_at_different_points_batched_equal_each_alone(ckpt):
    """A fixed schedule of steps: streams join and leave, chunks of 1-3 frames, first chunks beside steady ones."""
    node = loaded(ckpt)
    lengths, joins, sizes = [9, 4, 11, 6, 7], [0, 1, 1, 3, 4], [2, 1, 3]
    streams = [Stream() for _ in lengths]
    done, out = [0] * len(lengths), [[] for _ in lengths]
    calls: list[tuple[int, int]] = []  # (rows, frames) of each model call
    node.model.register_forward_hook(lambda m, args, _: calls.append((args[0].shape[0], args[0].shape[2])))
    batcher = StreamBatcher(node.model, max_batch=8, name="test")
    with torch.inference_mode():
        step = 0
        while done != lengths:
            chunks = []
            for s, n in enumerate(lengths):
                if joins[s] <= step and done[s] < n:
                    size = min(2 if s < 3 else sizes[(step + s) % 3], n - done[s])
                    chunks.append(Chunk(streams[s], codes(n, s)[done[s]:done[s] + size]))
                    done[s] += size
            for chunk, samples in zip(chunks, batcher.decode_batch(chunks)):
                out[streams.index(chunk.stream)].append(samples)
            for s, n in enumerate(lengths):
                if done[s] == n:
                    batcher.release(streams[s])  # left: its slot goes to the next newcomer
            step += 1
    assert batcher._state is None
    assert max(rows for rows, _ in calls) >= 3  # steady streams with equal chunks shared calls
    for s, n in enumerate(lengths):
        with torch.inference_mode():
            alone = node.model(torch.tensor(codes(n, s)).T[None])[0]
        joined = torch.cat(out[s])
        assert joined.shape == alone.shape
        torch.testing.assert_close(joined, alone, atol=1e-5, rtol=0)


class Gate:
    """Holds the batcher's first batch until `release`, so the other runs' calls queue behind it."""

    def __init__(self, node: Code2WavNode, batcher=None):
        self.batcher = batcher or node.streams.batcher
        self.run_batch = self.batcher.run_batch
        self.sizes: list[int] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.batcher.run_batch = self

    def __call__(self, chunks):
        self.sizes.append(len(chunks))
        if len(self.sizes) == 1:
            self.started.set()
            assert self.release.wait(WAIT)
        return self.run_batch(chunks)

    def queue(self, runs: int) -> None:
        """Wait until the first batch is held and `runs` calls wait behind it, then let everything go."""
        assert self.started.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while len(self.batcher._waiting) < runs:
            assert time.monotonic() < deadline, "the runs did not queue"
            threading.Event().wait(0.001)
        self.release.set()


def concurrently(node: Code2WavNode, inputs: list[list[CodecFrame]], gate: Gate) -> list:
    """Each input streamed by its own thread, the first one first: -> each run's samples or error."""
    def outcome(items):
        try:
            return audio(node, items)
        except UserError as error:
            return error

    with ThreadPoolExecutor(len(inputs)) as pool:
        first = pool.submit(outcome, inputs[0])
        assert gate.started.wait(WAIT)
        rest = [pool.submit(outcome, items) for items in inputs[1:]]
        gate.queue(len(rest))
        return [first.result(WAIT)] + [f.result(WAIT) for f in rest]


@pytest.mark.parametrize("chunk_frames", [1, 3])
def test_concurrent_runs_form_batches_and_keep_their_audio(ckpt, chunk_frames):
    node = loaded(ckpt, chunk_frames=chunk_frames)
    inputs = [frames(n, seed) for seed, n in enumerate([8, 5, 10, 7])]
    alone = [audio(node, items) for items in inputs]
    gate = Gate(node)
    got = concurrently(node, inputs, gate)
    assert gate.sizes[1] >= 3 and node.streams.batcher.peak_batch >= 3  # the queued first chunks: one batch
    for g, a in zip(got, alone):
        torch.testing.assert_close(g, a, atol=1e-5, rtol=0)
    assert node.streams._state is None  # every run finished: no state is left


def test_concurrent_whole_decodes_of_different_lengths_batched_keep_their_audio(ckpt):
    node = loaded(ckpt, mode="whole")
    inputs = [frames(n, seed) for seed, n in enumerate([8, 5, 10, 7])]
    with torch.inference_mode():
        alone = [node.model(torch.tensor([f.codes for f in items]).T[None])[0] for items in inputs]
    gate = Gate(node, node.wholes.batcher)
    got = concurrently(node, inputs, gate)
    assert gate.sizes == [1, 3]  # the three queued behind the first: one batch (one call per utterance on CPU)
    for g, a in zip(got, alone):
        assert g.shape == a.shape
        torch.testing.assert_close(g, a, atol=1e-5, rtol=0)
    with torch.inference_mode():  # one padded call, as on CUDA
        padded = node.wholes.decode_padded([[list(f.codes) for f in items] for items in inputs])
    for g, a in zip(padded, alone):
        assert g.shape == a.shape
        torch.testing.assert_close(g, a, atol=1e-5, rtol=0)


def test_max_batch_bounds_every_batch(ckpt):
    node = loaded(ckpt, max_batch=2)
    inputs = [frames(6, seed) for seed in range(5)]
    alone = [audio(node, items) for items in inputs]
    gate = Gate(node)
    got = concurrently(node, inputs, gate)
    assert max(gate.sizes) == 2 and node.streams.batcher.peak_batch == 2
    for g, a in zip(got, alone):
        torch.testing.assert_close(g, a, atol=1e-5, rtol=0)


def test_a_failing_run_leaves_the_others_audio_unchanged(ckpt):
    node = loaded(ckpt)
    inputs = [frames(9, seed) for seed in range(4)]
    alone = [audio(node, items) for items in inputs]
    inputs[2][5] = CodecFrame(5, (1, V + 7, 2))  # a code outside the codebook, mid-stream
    got = concurrently(node, inputs, Gate(node))
    assert isinstance(got[2], UserError) and "codec frame 5" in str(got[2])
    for s in (0, 1, 3):
        torch.testing.assert_close(got[s], alone[s], atol=1e-5, rtol=0)
    assert node.streams._state is None  # the failed run's slot was freed too


def test_a_cancelled_run_frees_its_slot_at_once(ckpt):
    node = loaded(ckpt)
    other = node.stream(iter(frames(6, 1)))
    cancelled = node.stream(iter(frames(6, 2)))
    next(other), next(cancelled)
    state = node.streams._state
    assert sum(1 for b in state.kv.budgets if b) == 2
    cancelled.close()  # the consumer stopped reading: the generator is closed
    assert sum(1 for b in state.kv.budgets if b) == 1
    rest = [chunk for _, chunk in other]
    assert len(rest) == 5 and node.streams._state is None


def test_concurrent_local_runs_equal_the_same_runs_one_by_one(ckpt):
    graph = graph_from_yaml("nodes: {c: {kind: code2wav, config: {chunk_frames: 2}}}\n"
                            "inputs: {frames: c.frames}\noutputs: {audio: c.audio}")
    executor = LocalExecutor(graph, checkpoint=ckpt)
    inputs = [frames(n, seed) for seed, n in enumerate([7, 4, 9])]
    want = [executor.start({"frames": items}).result(WAIT).outputs["audio"] for items in inputs]
    runs = [executor.start({"frames": items}) for items in inputs]
    got = [r.result(WAIT).outputs["audio"] for r in runs]
    for g, w in zip(got, want):
        torch.testing.assert_close(AudioChunk.join(g).samples, AudioChunk.join(w).samples, atol=1e-5, rtol=0)


class Feed:
    """A run's frames as the test hands them in: None ends the stream, Cancelled ends it as a cancelled run's."""

    def __init__(self):
        self.items: queue.Queue = queue.Queue()

    def __iter__(self):
        while (item := self.items.get(timeout=WAIT)) is not None:
            if item is Cancelled:
                raise Cancelled
            yield item


def start_streams(node: Code2WavNode, runs: list[str], feeds: dict, chunks: dict) -> ThreadPoolExecutor:
    """Each run's stream in a thread of its own, inside its run (its id), collecting its audio chunks."""
    def consume(run_id: str):
        enter_run(RunContext(run_id, "code2wav"))
        for _, chunk in node.stream(iter(feeds[run_id])):
            chunks[run_id].append(chunk)

    pool = ThreadPoolExecutor(len(runs))
    for r in runs:
        pool.submit(consume, r)
    return pool


def hand_on_one_by_one(node: Code2WavNode, index: int, frames_by_run: dict, feeds: dict, calls: list) -> None:
    """Frame `index` of each run, announced together (one Talker batch) and then arriving one after the other:
    each next run's frame only once the previous one's chunk waits in the batcher or was decoded."""
    node.items_coming("frames", [(r, index) for r in feeds])
    start = len(calls)
    for r, feed in feeds.items():
        before = len(calls)
        feed.items.put(frames_by_run[r][index])
        wait_until(lambda: len(calls) > before or any(w.item.stream.run_id == r
                                                          for w in list(node.streams.batcher._waiting)))
    wait_until(lambda: len(calls) > start)  # the last one's chunk may still wait in the batcher


def wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come"
        threading.Event().wait(0.001)


def recorded_calls(node: Code2WavNode) -> list[list[str]]:
    """The runs of every decode call from now on (in call order)."""
    calls: list[list[str]] = []
    inner = node.streams.batcher.run_batch

    def run_batch(items, inner=inner):
        calls.append(sorted(c.stream.run_id for c in items))
        return inner(items)

    node.streams.batcher.run_batch = run_batch
    return calls


def three_streams_past_their_first_chunk(ckpt, n_frames: int):
    """A loaded node with three live streams (runs r0-r2, `n_frames` frames each, their audio alone known) whose
    first chunks (urgent, each decoded as it comes) are out; its Code2Wav calls recorded from the start."""
    node = loaded(ckpt)
    runs = ["r0", "r1", "r2"]
    frames_by_run = {r: frames(n_frames, seed) for seed, r in enumerate(runs)}
    alone = {r: audio(node, items) for r, items in frames_by_run.items()}
    feeds, chunks = {r: Feed() for r in runs}, {r: [] for r in runs}
    calls = recorded_calls(node)
    pool = start_streams(node, runs, feeds, chunks)
    for r in runs:
        feeds[r].items.put(frames_by_run[r][0])
        wait_until(lambda: len(chunks[r]) == 1)
    return node, runs, frames_by_run, alone, feeds, chunks, calls, pool


def test_frames_of_runs_stepped_together_are_decoded_in_one_call(ckpt, monkeypatch):
    """Frames a Talker batch computed together arrive one by one (each run's hand-off is its own thread): the
    first to arrive waits for the others instead of being decoded alone, and each run's audio is as alone."""
    monkeypatch.setattr(step_batcher, "COMING_WAIT", 600.0)  # only the arrivals end the wait here
    node, runs, frames_by_run, alone, feeds, chunks, calls, pool = three_streams_past_their_first_chunk(ckpt, 5)
    for index in range(1, 5):
        hand_on_one_by_one(node, index, frames_by_run, feeds, calls)
    for feed in feeds.values():
        feed.items.put(None)
    pool.shutdown()
    assert calls == [["r0"], ["r1"], ["r2"]] + [runs] * 4
    for r in runs:
        torch.testing.assert_close(AudioChunk.join(chunks[r]).samples, alone[r], atol=1e-5, rtol=0)
    assert node.streams._state is None


def test_a_run_cancelled_while_its_frame_is_announced_holds_no_other(ckpt, monkeypatch):
    monkeypatch.setattr(step_batcher, "COMING_WAIT", 600.0)  # the cancel, not the bound, releases the others
    node, runs, frames_by_run, alone, feeds, chunks, calls, pool = three_streams_past_their_first_chunk(ckpt, 4)
    node.items_coming("frames", [(r, 1) for r in runs])
    for r in ("r0", "r1"):
        feeds[r].items.put(frames_by_run[r][1])
        wait_until(lambda: any(w.item.stream.run_id == r for w in list(node.streams.batcher._waiting)))
    assert len(calls) == 3  # both held: r2's frame is on its way
    feeds["r2"].items.put(Cancelled)
    wait_until(lambda: len(calls) == 4)
    assert calls[3] == ["r0", "r1"]
    del feeds["r2"]
    for index in range(2, 4):
        hand_on_one_by_one(node, index, frames_by_run, feeds, calls)
    for feed in feeds.values():
        feed.items.put(None)
    pool.shutdown()
    assert calls[4:] == [["r0", "r1"]] * 2
    for r in ("r0", "r1"):
        torch.testing.assert_close(AudioChunk.join(chunks[r]).samples, alone[r], atol=1e-5, rtol=0)
    assert node.streams._state is None
