"""The code2wav node: streamed chunks arrive early, count up, and join into the whole-utterance decode."""
from __future__ import annotations

import threading

import pytest
import torch

from c2w_oracle import build_code2wav
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.nodes.qwen.payloads import CodecFrame
from omnigraph.runtime.payloads import AudioChunk
from omnigraph.testing import graph_from_yaml, run_node

G, V, FRAMES = 3, 2048, 12


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    overrides = dict(num_quantizers=G, hidden_size=24, num_attention_heads=2, num_key_value_heads=2,
                     intermediate_size=40, sliding_window=4, decoder_dim=32)
    return build_code2wav(tmp_path_factory.mktemp("c2w"), overrides)[1]


def frames(n: int = FRAMES) -> list[CodecFrame]:
    gen = torch.Generator().manual_seed(n)
    return [CodecFrame(i, tuple(torch.randint(0, V, (G,), generator=gen).tolist())) for i in range(n)]


def decode(ckpt, items, **config) -> list[AudioChunk]:
    return run_node("code2wav", {"frames": items}, config, checkpoint=ckpt).get("audio", [])


@pytest.mark.parametrize("chunk_frames", [1, 3, 25])
def test_stream_joins_into_whole_decode(ckpt, chunk_frames):
    whole = decode(ckpt, frames(), mode="whole")
    chunks = decode(ckpt, frames(), chunk_frames=chunk_frames)
    assert len(whole) == 1 and whole[0].samples.shape == (1920 * FRAMES - 555,)
    assert len(chunks) == -(-FRAMES // chunk_frames)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.sample_rate == 24000 and c.samples.dtype == torch.float32 for c in chunks)
    assert chunks[0].samples.shape[0] == 1920 * min(chunk_frames, FRAMES) - 555
    joined = AudioChunk.join(chunks)
    torch.testing.assert_close(joined.samples, whole[0].samples, atol=1e-5, rtol=0)
    assert joined.samples.abs().max() <= 1.0


def test_no_frames_no_audio(ckpt):
    assert decode(ckpt, []) == [] and decode(ckpt, [], mode="whole") == []


def test_bfloat16_runs_close_to_float32(ckpt):
    ref = AudioChunk.join(decode(ckpt, frames())).samples
    bf16 = AudioChunk.join(decode(ckpt, frames(), dtype="bfloat16")).samples
    assert bf16.shape == ref.shape and (bf16 - ref).abs().mean() < 0.1 * ref.abs().mean()


def test_first_chunk_leaves_before_the_last_frame(ckpt):
    """The last frame is held back until an audio chunk has come out (or 20 s have passed)."""
    first_chunk = threading.Event()
    log = []

    def feed():
        items = frames()
        yield from items[:-1]
        log.append(("chunk before last frame", first_chunk.wait(20)))
        yield items[-1]

    graph = graph_from_yaml("nodes: {c: {kind: code2wav}}\ninputs: {frames: c.frames}\noutputs: {audio: c.audio}")
    run = LocalExecutor(graph, checkpoint=ckpt).start({"frames": feed()})
    chunks = []
    for event in run.events():
        chunks.append(event.value)
        first_chunk.set()
    assert log == [("chunk before last frame", True)]
    assert len(chunks) == FRAMES


@pytest.mark.parametrize("bad, message", [((1, 2), "has 2 codes; this code2wav takes 3"),
                                          ((1, 2, V), f"has code {V}, outside [0, {V})"),
                                          ((1, -1, 3), "has code -1")])
def test_malformed_frame_is_a_user_error(ckpt, bad, message):
    items = frames(5)
    items[3] = CodecFrame(3, bad)
    with pytest.raises(NodeFailed) as info:
        decode(ckpt, items)
    cause = info.value.error
    assert isinstance(cause, UserError) and "codec frame 3" in str(cause) and message in str(cause)
