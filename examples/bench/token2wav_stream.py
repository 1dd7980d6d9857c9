"""token2wav (Qwen2.5-Omni) first audio chunk and real-time factor: `mode: whole` (one ODE over the utterance,
as transformers) vs `mode: stream` at several chunk_blocks, on the same ids and seed, every id available at
once (the ids the first chunk waited for are counted).

    python examples/bench/token2wav_stream.py [--ids 200] [--chunks 1 2 4] [--repeats 2] [--checkpoint DIR]

Without --checkpoint, the tests' oracle25 BASE model (random, tiny DiT and BigVGAN of the released shape of
blocks: 24 frames, 2 back / 1 ahead) is saved to a temporary folder. Pin the process to one core on a shared
machine (taskset -c 0, OMP_NUM_THREADS=1). Measured there (2-core CPU shared with other work, 200 ids = 4 s):
whole 3.9-4.4 s after the last id (RTF 1.0-1.1); stream chunk_blocks 2: first chunk after 36 ids and
0.45-0.6 s (RTF 1.9-2.3); 1: after 36 ids (RTF 2.6-3.2); 4: after 60 ids (RTF 1.4-1.5). Stream and whole
waveforms agree within 1e-6 on this random model (in general stream is an approximation: see README).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch


def run(node, ids: list) -> tuple[float, int, float, torch.Tensor]:
    """(seconds to the first chunk, ids read by then, total seconds, waveform)."""
    read = [0]

    def codes():
        for c in ids:
            read[0] += 1
            yield c

    start, first, pieces = time.perf_counter(), None, []
    for port, item in node.stream(codes()):
        if port == "audio":
            first = first or (time.perf_counter() - start, read[0])
            pieces.append(item.samples)
    return first[0], first[1], time.perf_counter() - start, torch.cat(pieces)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ids", type=int, default=200)
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--checkpoint", type=Path)
    args = p.parse_args()
    from omnigraph.nodes.qwen2_5.payloads import CodecId
    from omnigraph.nodes.token2wav.node import Token2Wav
    from omnigraph.runtime.checkpoint import Checkpoint

    path = args.checkpoint
    if path is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
        from oracle25 import build_model, save_checkpoint

        path = save_checkpoint(build_model(), Path(tempfile.mkdtemp()))
    checkpoint = Checkpoint.open(path)
    g = torch.Generator().manual_seed(0)
    ids = [CodecId(int(c)) for c in torch.randint(0, 8192, (args.ids,), generator=g)]
    seconds = args.ids / 50
    whole = None
    for mode, chunk in [("whole", 1)] + [("stream", c) for c in args.chunks]:
        node = Token2Wav(Token2Wav.Config(mode=mode, seed=1, chunk_blocks=chunk))
        node.load("cpu", checkpoint)
        for _ in range(args.repeats):
            first, read, total, wav = run(node, ids)
            whole = wav if whole is None else whole
            print(f"{mode:6} chunk_blocks {chunk}: first chunk {first:.2f} s after {read} ids; total {total:.2f} s "
                  f"for {seconds:.1f} s of audio (RTF {total / seconds:.2f}); max |stream - whole| "
                  f"{(wav - whole).abs().max():.1e}")


if __name__ == "__main__":
    main()
