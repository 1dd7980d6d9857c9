"""The mel frontend, the audio encoder and the vision encoder with N concurrent prompts (one thread per run, as
the local executor runs them) against the same prompts one after another, on the `small` checkpoint, the process
pinned to one core (so any gain is batching, not a second core).

    python examples/bench/encoders_concurrency.py [--n 1 4 8] [--repeats 5] [--checkpoint DIR] [--device cpu]

Prompts: one audio clip of 2-10 s (mixed lengths) each for the mel frontend and the audio encoder; one image of
mixed sizes (96x96 to 640x480) each for the vision encoder, and one of 96x96 each ('vision 96x96'). Prints, per node and N, best wall times of: the
node's batched computation called once per prompt and once for all N; and N runs calling `process` one after
another and concurrently (one thread each, released together; the first computes alone, the others queue
behind it), with the largest batch formed. Times are the process's CPU time (all its threads; on one core the
work done), best of --repeats: on a shared machine wall times also hold other processes' turns on the core
(with --device cuda: wall times). Without --checkpoint, the small preset is written once to
~/.cache/omnigraph/small-seed0.
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from omnigraph.nodes.audio_encoder.node import AudioEncoderNode
from omnigraph.nodes.mel_frontend.node import MelFrontend
from omnigraph.nodes.vision_encoder.node import VisionEncoderNode
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import write_checkpoint
from omnigraph.nodes.common.media_payloads import Image, MediaItem, MelFeatures
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.runtime.payloads import Waveform

CACHE = Path.home() / ".cache" / "omnigraph" / "small-seed0"
RATE = 16000
SIZES = [(96, 96), (224, 224), (480, 640), (320, 240), (160, 480), (448, 448), (256, 384), (128, 200)]


def small_checkpoint() -> Path:
    if not (CACHE / "config.json").is_file():
        write_checkpoint(CACHE, "small", seed=0)
    return CACHE


def audio_prompts(n: int) -> list[PromptTokens]:
    rng = np.random.default_rng(n)
    prompts = []
    for seconds in np.linspace(2.0, 10.0, n) if n > 1 else [6.0]:
        t = np.arange(int(seconds * RATE) + int(rng.integers(0, 160))) / RATE
        clip = (0.4 * np.sin(2 * np.pi * rng.uniform(100, 900) * t) + 0.05 * rng.standard_normal(t.shape))
        prompts.append(PromptTokens(torch.zeros(1, dtype=torch.long),
                                    audios=(Waveform(torch.from_numpy(clip.astype(np.float32)), RATE),)))
    return prompts


def image_prompts(n: int, sizes: list[tuple[int, int]] = SIZES) -> list[PromptTokens]:
    g = torch.Generator().manual_seed(n)
    sizes = sizes[:n] if n > 1 else sizes[1:2]
    return [PromptTokens(torch.zeros(1, dtype=torch.long), (MediaItem("image", 0),),
                         images=(Image(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8)),))
            for h, w in (sizes * n)[:n]]


def one_after_another(node, inputs: list[dict]) -> None:
    for kwargs in inputs:
        node.process(**kwargs)


class Concurrent:
    """N run threads, started once; each call releases them together, each calling process() once."""

    def __init__(self, node, inputs: list[dict]):
        self.node, self.inputs = node, inputs
        self.start, self.done = threading.Barrier(len(inputs) + 1), threading.Barrier(len(inputs) + 1)
        self.threads = [threading.Thread(target=self._loop, args=(kwargs,), daemon=True) for kwargs in inputs]
        for t in self.threads:
            t.start()

    def _loop(self, kwargs: dict) -> None:
        torch.set_num_threads(torch.get_num_threads())  # a fresh thread's OpenMP team ignores the process's
        while True:
            self.start.wait()
            self.node.process(**kwargs)
            self.done.wait()

    def __call__(self) -> None:
        self.start.wait()
        self.done.wait()


def best(fn, repeats: int, clock=time.process_time) -> float:
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
        times.append(clock() - t0)
    return min(times)


def recorded_items(node, inputs: list[dict]) -> list:
    """The items process() hands to the node's batcher, one per prompt (recorded while running them in a row)."""
    batcher, items = node._batcher, []
    inner = batcher.run_batch
    batcher.run_batch = lambda batch: (items.extend(batch), inner(batch))[1]
    one_after_another(node, inputs)
    batcher.run_batch = inner
    return items


def bench(name: str, node, inputs: list[dict], repeats: int, clock) -> None:
    items = recorded_items(node, inputs)  # also the warm-up
    run_batch = node._batcher.run_batch
    with torch.inference_mode():
        alone = best(lambda: [run_batch([item]) for item in items], repeats, clock)
        together = best(lambda: run_batch(items), repeats, clock)
    seq = best(lambda: one_after_another(node, inputs), repeats, clock)
    node._batcher.peak_batch = 0
    runs = Concurrent(node, inputs)
    runs()  # warm-up: the threads' first torch calls
    par = best(runs, repeats, clock)
    print(f"{name:14s} N={len(inputs):2d}  batched call {alone * 1000:7.1f} -> {together * 1000:7.1f} ms "
          f"{alone / together:5.2f}x | {len(inputs)} runs: one after another {seq * 1000:7.1f} ms, concurrent "
          f"{par * 1000:7.1f} ms {seq / par:5.2f}x (largest batch {node._batcher.peak_batch})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--device", default="cpu", help="cpu (pinned to one core) or cuda")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    ckpt = Checkpoint.open(args.checkpoint or small_checkpoint())
    mel, audio, vision = MelFrontend(), AudioEncoderNode(), VisionEncoderNode()
    for node in (mel, audio, vision):
        node.load(args.device, ckpt)
    clock = time.perf_counter if args.device.startswith("cuda") else time.process_time
    for n in args.n:
        prompts = audio_prompts(n)
        bench("mel_frontend", mel, [{"prompt": p} for p in prompts], args.repeats, clock)
        features = [mel.process(p)["mel"] for p in prompts]
        bench("audio_encoder", audio, [{"mel": MelFeatures(f.features)} for f in features], args.repeats, clock)
        bench("vision_encoder", vision, [{"prompt": p} for p in image_prompts(n)], args.repeats, clock)
        bench("vision 96x96", vision, [{"prompt": p} for p in image_prompts(n, [(96, 96)] * 8)], args.repeats,
              clock)


if __name__ == "__main__":
    main()
