"""Code2Wav streaming cost: 500 frames streamed (chunk_frames 1 and 4) vs one whole-utterance decode.

    python examples/bench/code2wav_stream.py [--frames 500] [--threads N] [--checkpoint DIR]

Without --checkpoint, a `small` random checkpoint (omnigraph.runtime.checkpoint_writer, bfloat16 on disk) is
written to a temporary folder; code2wav loads it in float32 (hidden 128, 2 layers, decoder 192, 16 quantizers,
rates 8.5.4.3 x 2.2: 1920 samples per frame). Targets: streaming <= 1.3x the whole decode; the last 50 frames
cost <= 1.2x the first 50 per frame (the causal state does not grow).

On a CPU shared with other work pass --threads 1: a streamed frame is many small ops, and with 2 OpenMP
threads on a busy 2-core machine single steps stalled for up to 0.8 s (chunk_frames=1 then read 10x whole).
Runs on 1 thread (2-core CPU, shared; noisy): whole 2.5-3.1 s (13-16x real time); stream chunk_frames=1
3.3-3.6 s = 1.07-1.36x whole, chunk_frames=4 0.52-0.70x; per frame last 50 / first 50 = 0.76-0.89 in most runs.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch


def load(checkpoint: str):
    from omnigraph.nodes.code2wav.node import Code2WavNode
    from omnigraph.runtime.checkpoint import Checkpoint

    node = Code2WavNode()
    node.load("cpu", Checkpoint.open(checkpoint))
    return node.model, node.args


def stream(model, codes: torch.Tensor, chunk: int) -> tuple[float, list[float], torch.Tensor]:
    """Total seconds, seconds per step, and the concatenated waveform."""
    cache: dict = {}
    steps, pieces = [], []
    start = time.perf_counter()
    for s in range(0, codes.shape[-1], chunk):
        t = time.perf_counter()
        pieces.append(model(codes[..., s:s + chunk], cache))
        steps.append(time.perf_counter() - t)
    return time.perf_counter() - start, steps, torch.cat(pieces, dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if opts.checkpoint is None:
            from omnigraph.runtime.checkpoint_writer import write_checkpoint

            opts.checkpoint = str(write_checkpoint(tmp, "small"))
        model, args = load(opts.checkpoint)
    T = opts.frames
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, args.codebook_size, (1, args.num_quantizers, T), generator=gen)
    print(f"code2wav: hidden {args.hidden_size}, {args.num_hidden_layers} layers, decoder {args.decoder_dim}, "
          f"{args.num_quantizers} quantizers, window {args.sliding_window}; {T} frames = {T * 0.08:.1f} s of "
          f"audio; {torch.get_num_threads()} threads")
    with torch.inference_mode():
        model(codes[..., :8])  # warm-up
        timings = []
        for _ in range(2):
            t = time.perf_counter()
            whole = model(codes)
            timings.append(time.perf_counter() - t)
        whole_s = min(timings)
        print(f"whole decode:          {whole_s:7.3f} s  ({whole.shape[-1]} samples, {T * 0.08 / whole_s:.1f}x "
              f"real time)")
        for chunk in (1, 4):
            total, steps, wav = stream(model, codes, chunk)
            diff = (wav - whole).abs().max().item()
            print(f"stream chunk_frames={chunk}: {total:7.3f} s  = {total / whole_s:.2f}x whole "
                  f"(target <= 1.3x); max |stream - whole| = {diff:.1e}")
            if chunk == 1:
                first, last = sum(steps[:50]) / 50, sum(steps[-50:]) / 50
                print(f"  per frame: first 50 {first * 1e3:.2f} ms, last 50 {last * 1e3:.2f} ms, ratio "
                      f"{last / first:.2f} (target <= 1.2); first chunk after {steps[0] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
