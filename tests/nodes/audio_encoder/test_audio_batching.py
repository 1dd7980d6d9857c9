"""Prompts of concurrent runs encoded in one batched call: each prompt's embeddings are those it gets alone
(the transformers audio tower's for that prompt), through the node and through LocalExecutor on the captioner."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from held_batch import queued_together, wait_until
from test_audio_encoder import TOL, build_checkpoint, load_node, oracle

from omnigraph.nodes.audio_encoder.model import audio_tokens
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.media_payloads import MelFeatures

# Clips per prompt, in mel frames. [54]: shorter than one chunk, with an odd length at the second conv, so padding
# it to another prompt's chunk width would change its last token.
FRAMES = [[950], [130, 40], [1234], [99, 100, 101], [800], [40], [54]]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("aut_batching")
    return path, build_checkpoint(path, dict(n_window_infer=300), seed=2)  # windows of 39 tokens


def features(frames: list[int], seed: int, bins: int = 128) -> MelFeatures:
    g = torch.Generator().manual_seed(seed)
    return MelFeatures(tuple(torch.randn(bins, n, generator=g) for n in frames))


def test_batched_prompts_equal_each_prompt_alone(encoder):
    path, tower = encoder
    node = load_node(path)
    mels = [features(frames, seed) for seed, frames in enumerate(FRAMES)]
    got, gate = queued_together(node._batcher, [lambda m=m: node.process(m)["audio"] for m in mels])
    assert gate.sizes == [1, len(FRAMES) - 1] and node._batcher.peak_batch == len(FRAMES) - 1
    for out, mel, frames in zip(got, mels, FRAMES):
        assert out.tokens == tuple(audio_tokens(n) for n in frames)
        torch.testing.assert_close(out.embeddings, oracle(tower, list(mel.features)), **TOL)


def test_a_bad_prompt_fails_alone_and_max_batch_bounds_the_batches(encoder):
    path, tower = encoder
    node = load_node(path, max_batch=2)
    mels = [features(frames, seed) for seed, frames in enumerate(FRAMES[:4])]
    bad = features([50], 9, bins=80)
    got, gate = queued_together(node._batcher, [lambda m=m: node.process(m)["audio"]
                                                for m in [mels[0], mels[1], bad, mels[2], mels[3]]])
    assert gate.sizes == [1, 2, 1] and node._batcher.peak_batch == 2
    assert isinstance(got[2], UserError) and "have shape [80, 50]" in str(got[2])
    for out, mel in zip(got[:2] + got[3:], mels):
        torch.testing.assert_close(out.embeddings, oracle(tower, list(mel.features)), **TOL)


def test_concurrent_captioner_runs_with_audio_of_different_lengths_equal_each_run_alone(tmp_path):
    """Four greedy captioner runs started together through the public API; the audio encoder's first batch is
    held until the other three runs' prompts queue behind it, so they are encoded in one batch."""
    from held_batch import HeldFirstBatch

    from omnigraph.runtime.checkpoint import Checkpoint
    from omnigraph.runtime.checkpoint_writer import write_checkpoint
    from omnigraph.runtime.executor_local import LocalExecutor
    from omnigraph.runtime.validate import load_graph

    checkpoint = Checkpoint.open(write_checkpoint(tmp_path / "tiny", "tiny", seed=4))
    inputs = []
    for i, seconds in enumerate([1.0, 2.7, 0.6, 4.1]):
        t = np.arange(int(seconds * 16000)) / 16000
        wav = tmp_path / f"clip{i}.wav"
        soundfile.write(wav, (0.4 * np.sin(2 * np.pi * (150 + 90 * i) * t)).astype(np.float32), 16000)
        inputs.append({"audio": str(wav)})
    graph = load_graph("captioner", overrides={("thinker", "greedy"): True, ("thinker", "max_new_tokens"): 4})
    with LocalExecutor(graph, checkpoint=checkpoint, device="cpu") as executor:
        want = [executor.run(i).outputs for i in inputs]
        batcher = executor.nodes["audio_encoder"]._batcher
        gate = HeldFirstBatch(batcher)
        runs = [executor.start(inputs[0])]
        assert gate.started.wait(120)
        runs += [executor.start(i) for i in inputs[1:]]
        wait_until(lambda: len(batcher._waiting) == 3, "the other runs' prompts queued")
        gate.release.set()
        got = [r.result(120).outputs for r in runs]
    assert gate.sizes == [1, 3]
    assert [g["thinker_token_ids"] for g in got] == [w["thinker_token_ids"] for w in want]
    assert [g["text"] for g in got] == [w["text"] for w in want]
    assert [g["prompt_token_ids"] for g in got] == [w["prompt_token_ids"] for w in want]
    assert len({len(w["prompt_token_ids"].ids) for w in want}) == 4  # four audio lengths: four prompt lengths
