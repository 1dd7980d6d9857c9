"""Concurrent runs on one loaded token2wav are solved together and keep their audio: whole utterances as one
padded ODE (lengths through both attention paths, voices and seeds differ per run), stream windows that are
ready together as one ODE; each waveform within 1e-5 of the same run alone; max_batch bounds the batches
(counted)."""
import threading

import torch
from held_batch import WAIT, HeldFirstBatch, outcome, wait_until
from token2wav_oracle import random_codes

from omnigraph.nodes.qwen2_5.payloads import CodecId
from omnigraph.nodes.token2wav.node import Token2Wav
from omnigraph.nodes.token2wav.whole_batch import WholeBatcher
from omnigraph.runtime.context import RunContext, enter_run
from omnigraph.runtime.payloads import Text

# (codes, voice, run seed); 50 codes = 100 mel frames: past 4 blocks, the blockwise attention path of the
# layers that see one block only (a padded row takes it too)
RUNS = [(50, "Chelsie", 1), (4, "Ethan", 2), (9, "Chelsie", 3), (14, "Ethan", 4), (6, "Chelsie", 5)]


def loaded(ckpt, **config) -> Token2Wav:
    node = Token2Wav(Token2Wav.Config(num_steps=3, **config))
    node.load("cpu", ckpt)
    return node


def speak(node, spec) -> tuple[torch.Tensor, tuple]:
    """One run's (waveform, ids), in this thread as the run of `spec`'s seed."""
    count, voice, seed = spec
    enter_run(RunContext(run_id=f"run{seed}", node="token2wav", seed=seed))
    audio, ids = [], None
    for port, item in node.stream(iter(CodecId(int(c)) for c in random_codes(count, seed)[0]), Text(voice)):
        if port == "audio":
            audio.append(item.samples)
        else:
            ids = item.ids
    return torch.cat(audio), ids


def concurrently(node, specs) -> tuple[list, HeldFirstBatch]:
    """The runs from their own threads, the first one's utterance (or window) held until the others' are
    queued."""
    batcher = (node._wholes if node.config.mode == "whole" else node._windows).batcher
    gate, results = HeldFirstBatch(batcher), [None] * len(specs)

    def start(i):
        results[i] = outcome(lambda: speak(node, specs[i]))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(specs))]
    threads[0].start()
    assert gate.started.wait(WAIT)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: len(batcher._waiting) == len(specs) - 1, "the utterances queued")
    gate.release.set()
    for t in threads:
        t.join(WAIT)
    return results, gate


def test_utterances_solved_together_equal_each_alone_and_max_batch_bounds_the_batches(ckpt):
    node = loaded(ckpt)
    alone = [speak(node, spec) for spec in RUNS]
    # CUDA's way, max_batch 3 (the CPU solves one utterance per batch)
    node._wholes = WholeBatcher(node._dit, node._vocoder, node.config.num_steps, 3, "whole", together=True)
    assert [len(wav) for wav, _ in alone] == [480 * count for count, _, _ in RUNS]
    got, gate = concurrently(node, RUNS)
    assert gate.sizes == [1, 3, 1]  # the first held alone, then the four queued behind it, three at most
    for (wav, ids), (want_wav, want_ids) in zip(got, alone):
        assert ids == want_ids
        torch.testing.assert_close(wav, want_wav, atol=1e-5, rtol=0)


def test_stream_windows_solved_together_equal_each_run_alone(ckpt):
    node = loaded(ckpt, mode="stream", chunk_blocks=1)
    runs = [(4, "Chelsie", 1), (26, "Ethan", 2), (30, "Chelsie", 3)]  # first windows of 8, 48 and 48 frames
    alone = [speak(node, spec) for spec in runs]
    got, gate = concurrently(node, runs)
    assert gate.sizes[1] == 2  # the others' first windows, queued behind the held one: one ODE of two rows
    for (wav, ids), (want_wav, want_ids) in zip(got, alone):
        assert ids == want_ids
        torch.testing.assert_close(wav, want_wav, atol=1e-5, rtol=0)
