"""Concurrent `captioner` requests on Ray, one replica of each stage, against the same requests one after
another: the batching gain of examples/bench/concurrency.py, but with concurrent runs sharing the engines of
one actor per stage (`small` checkpoint; the driver is pinned to one core before Ray starts, so the raylet and
every actor inherit that core and any gain is batching).

    python examples/bench/ray_concurrency.py [--n 1 8] [--tokens 64] [--checkpoint DIR] [--repeats 1]

Prints, per N, aggregate output tokens/s concurrent and in a row and their ratio, and the median first text
over a request alone (all on Ray, in the same run). Target: the local gain at N = 8.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
from pathlib import Path

import ray
import torch
from concurrency import concurrent, sequential, small_checkpoint, tone  # this folder's local benchmark

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.executor_ray import RayExecutor
from omnigraph.runtime.overrides import parse_overrides
from omnigraph.runtime.validate import load_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=64, help="max_new_tokens of each request")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-pin", action="store_true", help="do not pin Ray to one core")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # inherited by the raylet and actors
    torch.set_num_threads(1)
    checkpoint = Checkpoint.open(args.checkpoint or small_checkpoint())
    settings = [f"thinker.max_new_tokens={args.tokens}", f"thinker.max_batch={max(args.n)}",
                "*.placement.num_gpus=0", "*.placement.replicas=1"]
    graph = load_graph("captioner", overrides=parse_overrides(settings))
    ray.init(include_dashboard=False, logging_level=logging.WARNING, num_cpus=8)
    inputs = {"audio": str(tone(Path(os.environ.get("TMPDIR", "/tmp")) / "omnigraph-bench-tone.wav"))}
    with RayExecutor(graph, checkpoint=checkpoint, device="cpu") as executor:
        executor.load()
        sequential(executor, inputs, [0])  # warm-up
        _, alone = sequential(executor, inputs, [0, 1, 2])
        first_alone = statistics.median(f for f, _ in alone)
        print(f"captioner on Ray (one replica per stage, one core), small checkpoint, max_new_tokens "
              f"{args.tokens}; first text alone {first_alone * 1e3:.0f} ms")
        for n in args.n:
            for _ in range(args.repeats):
                seeds = list(range(100, 100 + n))
                seq_wall, seq = sequential(executor, inputs, seeds)
                con_wall, con = concurrent(executor, inputs, seeds)
                seq_rate, con_rate = sum(t for _, t in seq) / seq_wall, sum(t for _, t in con) / con_wall
                print(f"  N={n:2d}: concurrent {con_rate:7.1f} tok/s, sequential {seq_rate:7.1f} tok/s, ratio "
                      f"{con_rate / seq_rate:5.2f}x | first text median "
                      f"{statistics.median(f for f, _ in con) / first_alone:5.2f}x of alone")
    ray.shutdown()


if __name__ == "__main__":
    main()
