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
from pathlib import Path

import ray
import torch
from concurrency import report, small_checkpoint, tone  # this folder's local benchmark

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
        report(executor, inputs, args.n, "captioner on Ray (one replica per stage, one core), small checkpoint, "
               f"max_new_tokens {args.tokens}", args.repeats, cpu=False)  # the work runs in the actors
    ray.shutdown()


if __name__ == "__main__":
    main()
