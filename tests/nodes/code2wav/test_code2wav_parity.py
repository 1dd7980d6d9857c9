"""Code2Wav parity with transformers (whole, chunked) and streaming == whole decode, on lively random weights."""
from __future__ import annotations

import pytest
import torch

from c2w_oracle import build_code2wav
from omnigraph.nodes.code2wav.model import Code2WavArgs
from omnigraph.nodes.code2wav.weights import load_code2wav
from omnigraph.runtime.checkpoint import Checkpoint

CONFIGS = {
    "tiny": {},  # tests/oracle.py: 4 quantizers, hidden 32, 4 heads, window 72, rates 8.5.4.3 x 2.2, decoder 64
    "odd": dict(num_quantizers=5, hidden_size=48, num_attention_heads=6, num_key_value_heads=3,
                intermediate_size=80, sliding_window=5, upsample_rates=[4, 3, 2, 2], upsampling_ratios=[2, 3],
                decoder_dim=48, codebook_size=300),
    "window1": dict(num_quantizers=3, hidden_size=24, num_attention_heads=2, num_key_value_heads=2,
                    intermediate_size=40, sliding_window=1, upsample_rates=[3, 2], upsampling_ratios=[2],
                    decoder_dim=16),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request, tmp_path_factory):
    """(transformers code2wav, our Code2Wav loaded through our loader) for one config."""
    name = request.param
    ref, folder = build_code2wav(tmp_path_factory.mktemp(name), CONFIGS[name], clip=name == "odd")
    ckpt = Checkpoint.open(folder)
    args = Code2WavArgs.from_hf_config(ckpt.config)
    return ref, load_code2wav(ckpt, "code2wav.", torch.float32), args, name


def codes_for(args: Code2WavArgs, frames: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + frames)
    return torch.randint(0, args.codebook_size, (batch, args.num_quantizers, frames), generator=gen)


@pytest.mark.parametrize("frames", [1, 7, 80])
def test_whole_decode_matches_transformers(pair, frames):
    ref, ours, args, name = pair
    codes = codes_for(args, frames, batch=2)
    with torch.inference_mode():
        expected, got = ref(codes).squeeze(1), ours(codes)
    assert got.shape == (2, args.num_samples(frames))
    if args.upsample_rates == (8, 5, 4, 3) and args.upsampling_ratios == (2, 2):
        assert got.shape[-1] == 1920 * frames - 555
    assert frames == 1 or expected.std() > 0.05  # the waveform is not inert
    if name == "odd" and frames > 1:
        assert (expected.abs() == 1).any()  # its shifted output passes 1 somewhere: the clamp is checked too
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_chunked_decode_matches_transformers(pair):
    ref, ours, args, _ = pair
    codes = codes_for(args, 23)
    with torch.inference_mode():
        expected, got = ref.chunked_decode(codes, 8, 3).squeeze(1), ours.chunked_decode(codes, 8, 3)
    assert got.shape[-1] == args.samples_per_frame * 23 - (args.samples_per_frame * 1 - args.num_samples(1)) * 3
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("chunk", [1, 3, 25])
def test_stream_equals_whole_decode(pair, chunk):
    _, ours, args, _ = pair
    frames = 40
    codes = codes_for(args, frames)
    state = ours.new_state()
    slot = state.add()
    with torch.inference_mode():
        whole = ours(codes)
        pieces = []
        for start in range(0, frames, chunk):
            pieces.append(ours.stream(codes[..., start:start + chunk], state, [slot]))
            done = min(start + chunk, frames)
            # everything emitted so far is final: the whole decode of the frames seen so far
            assert sum(p.shape[-1] for p in pieces) == args.num_samples(done)
    torch.testing.assert_close(torch.cat(pieces, dim=-1), whole, atol=1e-5, rtol=0)


def test_stream_state_does_not_grow(pair):
    """Per-frame cost is constant: the state is preallocated, and stays the same size all along the stream."""
    _, ours, args, _ = pair
    codes = codes_for(args, 90)
    state = ours.new_state()
    slot = state.add()

    def held():
        return sum(t.numel() for t in [*state.buffers.values(), *state.kv.k, *state.kv.v])

    sizes = []
    with torch.inference_mode():
        for t in range(90):
            out = ours.stream(codes[..., t:t + 1], state, [slot])
            if t > 0:
                assert out.shape[-1] == args.samples_per_frame
            sizes.append(held())
    assert sizes[0] == sizes[-1] and state.kv.capacity == args.sliding_window
    assert state.frames(slot) == 90  # RoPE positions keep counting
