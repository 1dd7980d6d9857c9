"""Concurrent `captioner` requests on Ray, one replica of each stage, against the same requests one after
another: the batching gain of examples/bench/concurrency.py, but with concurrent runs sharing the engines of
one actor per stage (`small` checkpoint; the driver is pinned to one core before Ray starts, so the raylet and
every actor inherit that core and any gain is batching).

    python examples/bench/ray_concurrency.py [--n 1 8] [--tokens 64] [--checkpoint DIR] [--repeats 1] [--local]

Prints, per N, aggregate output tokens/s concurrent and in a row and their ratio, the median first text over a
request alone, and the ratio per CPU second of every process of the Ray session (driver, raylet, actors: on a
core shared with other work, wall time also counts theirs). With --local, the same requests then run on the
local executor in this process, for the local figure of the same run. Target: the local gain at N = 8.
Ray's workers run at nice 15 by default, so on a core others also use they get a small share of it and Ray's wall
times would be lost to priority, not to Ray; here they run at this process's priority (RAY_worker_niceness=0).
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import psutil
import ray
import torch
from concurrency import report, small_checkpoint, tone  # this folder's local benchmark

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.executor_local import LocalExecutor
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
    parser.add_argument("--local", action="store_true", help="then the same on the local executor, for comparison")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # inherited by the raylet and actors
    torch.set_num_threads(1)
    checkpoint = Checkpoint.open(args.checkpoint or small_checkpoint())
    settings = [f"thinker.max_new_tokens={args.tokens}", f"thinker.max_batch={max(args.n)}",
                "*.placement.num_gpus=0", "*.placement.replicas=1"]
    graph = load_graph("captioner", overrides=parse_overrides(settings))
    os.environ.setdefault("RAY_worker_niceness", "0")  # as the local executor's process (see the docstring)
    ray.init(include_dashboard=False, logging_level=logging.WARNING, num_cpus=8)
    inputs = {"audio": str(tone(Path(os.environ.get("TMPDIR", "/tmp")) / "omnigraph-bench-tone.wav"))}
    with RayExecutor(graph, checkpoint=checkpoint, device="cpu") as executor:
        executor.load()
        report(executor, inputs, args.n, "captioner on Ray (one replica per stage, one core), small checkpoint, "
               f"max_new_tokens {args.tokens}", args.repeats, cpu_clock=session_cpu_seconds)
    ray.shutdown()
    if args.local:
        executor = LocalExecutor(graph, checkpoint=checkpoint, device="cpu")
        executor.load()
        report(executor, inputs, args.n, "the same on the local executor", args.repeats)


def session_cpu_seconds() -> float:
    """CPU seconds of this driver and every process it started: the local Ray instance's raylet, GCS and actors."""
    me = psutil.Process()
    total = 0.0
    for process in (me, *me.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


if __name__ == "__main__":
    main()
