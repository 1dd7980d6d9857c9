"""Concurrent `captioner` requests through the public API (`LocalExecutor.start` called N times) against the same
requests one after another, on the `small` checkpoint, the process pinned to one core (so any gain is batching,
not a second core).

    python examples/bench/concurrency.py [--n 1 4 8 16] [--tokens 64] [--repeats 1] [--checkpoint DIR] [--device cpu]

Prints, per N: aggregate output tokens/s of N concurrent requests and of the same N requests in a row, their
ratio (target at N = 8: >= 5x), and the median and p95 time to the first text piece of the concurrent
requests over that of a request alone, and the throughput ratio per CPU second of this process (with both
rates in output tokens per CPU second; on a core shared with other work, wall time also counts theirs; CPU time
does not). Without --checkpoint, the small preset is written once to
~/.cache/omnigraph/small-seed0. Requests are sampled (each its own seed), so replies differ in length.
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import wave
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import write_checkpoint
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.validate import load_graph

CACHE = Path.home() / ".cache" / "omnigraph" / "small-seed0"


def small_checkpoint() -> Path:
    if not (CACHE / "config.json").is_file():
        write_checkpoint(CACHE, "small", seed=0)
    return CACHE


def tone(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())
    return path


def one(executor: LocalExecutor, inputs: dict, seed: int, t0: float, out: list, index: int) -> None:
    """Run one request; out[index] = (seconds from t0 to its first text piece, output tokens)."""
    run = executor.start(inputs, seed=seed)
    first = None
    for event in run.events():
        if first is None and event.name == "text":
            first = time.perf_counter() - t0
    out[index] = (first, len(run.result().outputs["thinker_token_ids"].ids))


def concurrent(executor: LocalExecutor, inputs: dict, seeds: list[int]) -> tuple[float, list[tuple]]:
    """All requests at once: (wall seconds, per request (first text s, tokens))."""
    out: list = [None] * len(seeds)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(executor, inputs, s, t0, out, i)) for i, s in enumerate(seeds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, out


def sequential(executor: LocalExecutor, inputs: dict, seeds: list[int]) -> tuple[float, list[tuple]]:
    out: list = [None] * len(seeds)
    t0 = time.perf_counter()
    for i, s in enumerate(seeds):
        one(executor, inputs, s, time.perf_counter(), out, i)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--tokens", type=int, default=64, help="max_new_tokens of each request")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per N (a range on a busy machine)")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    checkpoint = Checkpoint.open(args.checkpoint or small_checkpoint())
    graph = load_graph("captioner", overrides={("thinker", "max_new_tokens"): args.tokens,
                                               ("thinker", "max_batch"): max(args.n)})
    executor = LocalExecutor(graph, device=args.device, checkpoint=checkpoint)
    executor.load()
    inputs = {"audio": str(tone(Path(os.environ.get("TMPDIR", "/tmp")) / "omnigraph-bench-tone.wav"))}
    report(executor, inputs, args.n, f"captioner, small checkpoint, {args.device}, 1 core, max_new_tokens {args.tokens}",
           args.repeats)


def report(executor, inputs: dict, ns: list[int], title: str, repeats: int = 1,
           cpu_clock: Callable[[], float] = time.process_time) -> None:
    """Warm up, time requests alone, then print per N the concurrent vs sequential figures, and their ratio per
    CPU second of `cpu_clock` (this process's by default; pass one that counts every process doing the work)."""
    sequential(executor, inputs, [0])  # warm-up
    _, alone = sequential(executor, inputs, [0, 1, 2])
    first_alone = statistics.median(f for f, _ in alone)
    print(f"{title}; first text alone {first_alone * 1e3:.0f} ms")
    for n in ns:
        for _ in range(repeats):
            seeds = list(range(100, 100 + n))
            c0 = cpu_clock()
            seq_wall, seq = sequential(executor, inputs, seeds)
            c1 = cpu_clock()
            con_wall, con = concurrent(executor, inputs, seeds)
            con_cpu_rate = sum(t for _, t in con) / (cpu_clock() - c1)  # output tokens per CPU second
            seq_cpu_rate = sum(t for _, t in seq) / (c1 - c0)
            seq_rate, con_rate = sum(t for _, t in seq) / seq_wall, sum(t for _, t in con) / con_wall
            firsts = sorted(f for f, _ in con)
            p95 = firsts[min(len(firsts) - 1, int(round(0.95 * (len(firsts) - 1))))]
            print(f"  N={n:2d}: concurrent {con_rate:7.1f} tok/s, sequential {seq_rate:7.1f} tok/s, "
                  f"ratio {con_rate / seq_rate:5.2f}x | first text median "
                  f"{statistics.median(firsts) / first_alone:5.2f}x, p95 {p95 / first_alone:5.2f}x of alone"
                  f" | per CPU second {con_cpu_rate / seq_cpu_rate:5.2f}x ({con_cpu_rate:.1f} vs {seq_cpu_rate:.1f})")

if __name__ == "__main__":
    main()
