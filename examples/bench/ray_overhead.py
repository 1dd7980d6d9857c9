"""What the Ray executor costs over the local one, measured in the same run: per-hop overhead of a stream item
crossing actors, and time to the first audio packet of qwen3_omni on a `small` checkpoint.

    python examples/bench/ray_overhead.py [--hops 3] [--items 2000] [--threads 1] [--checkpoint DIR]

1. Per hop. A source stamps each item with the time it was made (`time.perf_counter`, one clock for every
   process of a machine); relays pass it on; the caller notes when it arrives. The same chain runs with every
   node in this process (local) and with every node in its own actor (Ray: `hops` actor-to-actor hops plus the
   last actor to the caller). Paced: one item every `--gap` ms, so each item travels alone: per-hop overhead =
   (Ray - local median latency) / crossings, target under 2 ms; printed beside bare Ray actors relaying the
   same stamps through streaming generators (Ray's own floor). Flood: items as fast as they come (throughput;
   what is queued travels in one message).
2. First audio packet. qwen3_omni, small checkpoint, text prompt, greedy Thinker: the best time from `start()`
   to the first audio chunk over `--repeats` runs, local vs Ray (one actor per placement stage, GPUs asked for
   set to 0). Local runs with `--threads` torch threads; each Ray actor gets one (Ray's default for one CPU).
   Target: Ray at most 1.5x local.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import ray
import torch
from first_packet import first_packet_times  # this folder's first-packet benchmark
from ray_concurrency import session_cpu_seconds

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import write_checkpoint
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.executor_ray import RayExecutor
from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.payloads import Payload
from omnigraph.runtime.overrides import parse_overrides
from omnigraph.runtime.ports import Input, Output
from omnigraph.runtime.validate import load_graph
from omnigraph.testing import graph_from_yaml

TEXT = "Tell me everything you know about the weather in Paris."


@dataclass(frozen=True)
class Stamp(Payload):
    index: int
    made: float  # time.perf_counter() when the source made it


@dataclass(frozen=True)
class Count(Payload):
    value: int


class Source(Node):
    """Streams `n` stamped items, `gap` seconds apart."""

    kind = "bench_source"

    class Config(NodeConfig):
        gap: float = 0.0

    inputs = (Input("n", Count),)
    outputs = (Output("items", Stamp, stream=True),)

    def stream(self, n: Count) -> Iterator[tuple[str, Stamp]]:
        for i in range(n.value):
            if self.config.gap:
                time.sleep(self.config.gap)
            yield "items", Stamp(i, time.perf_counter())


class Relay(Node):
    kind = "bench_relay"
    inputs = (Input("items", Stamp, stream=True),)
    outputs = (Output("items", Stamp, stream=True),)

    def stream(self, items: Iterator[Stamp]) -> Iterator[tuple[str, Stamp]]:
        for item in items:
            yield "items", item


def chain_yaml(hops: int, gap: float) -> str:
    """A source and `hops` relays, each in a placement group of its own."""
    nodes = [f"  src: {{kind: bench_source, config: {{gap: {gap}}}, placement: {{group: g0}}}}"]
    edges, prev = [], "src"
    for i in range(1, hops + 1):
        nodes.append(f"  r{i}: {{kind: bench_relay, placement: {{group: g{i}}}}}")
        edges.append(f"  - {prev}.items -> r{i}.items")
        prev = f"r{i}"
    return textwrap.dedent("inputs: {n: src.n}\nnodes:\n") + "\n".join(nodes) + "\nedges:\n" + "\n".join(edges) + \
        f"\noutputs: {{items: {prev}.items}}\n"


def chain_times(executor: Any, items: int) -> tuple[float, float]:
    """Median latency of an item (made -> caller) and the wall time of the run, in seconds."""
    executor.run({"n": Count(20)})  # warm
    t0 = time.perf_counter()
    run = executor.start({"n": Count(items)})
    latencies = [time.perf_counter() - event.value.made for event in run.events()]
    wall = time.perf_counter() - t0
    run.result()
    assert len(latencies) == items
    return statistics.median(latencies), wall


@ray.remote
class PlainSource:
    """Ray's own floor: a bare actor streaming stamps through a streaming generator."""

    def stream(self, n: int, gap: float) -> Iterator[float]:
        for _ in range(n):
            time.sleep(gap)
            yield time.perf_counter()


@ray.remote
class PlainRelay:
    def stream(self, upstream: Any, n: int, gap: float) -> Iterator[float]:
        for ref in upstream.stream.options(num_returns="streaming").remote(n, gap):
            yield ray.get(ref)


def plain_ray_latency(hops: int, items: int, gap: float) -> float:
    """Median latency of a stamp through a source and `hops` bare relays, each nesting the previous one's call."""
    source = PlainSource.remote()
    if hops == 0:
        refs = source.stream.options(num_returns="streaming").remote(items, gap)
    else:
        assert hops == 1, "the bare chain nests calls: one relay is enough for a floor"
        refs = PlainRelay.remote().stream.options(num_returns="streaming").remote(source, items, gap)
    return statistics.median(time.perf_counter() - ray.get(ref) for ref in refs)


def per_hop(hops: int, items: int, gap_ms: float) -> None:
    crossings = hops + 1  # actor to actor, then the last actor to the caller
    print(f"stream items through a source and {hops} relays, each in its own actor ({crossings} crossings):")
    paced = min(items, 300)
    graph = graph_from_yaml(chain_yaml(hops, gap_ms / 1000), extra_kinds=[Source, Relay])
    local_latency, _ = chain_times(LocalExecutor(graph), paced)
    with RayExecutor(graph) as executor:
        ray_latency, _ = chain_times(executor, paced)
    floor = (plain_ray_latency(1, paced, gap_ms / 1000)) / 2
    print(f"  paced, one item every {gap_ms:g} ms: median latency local {local_latency * 1e3:.3f} ms, "
          f"ray {ray_latency * 1e3:.3f} ms -> {(ray_latency - local_latency) / crossings * 1e3:.3f} ms per hop "
          f"(target < 2; bare Ray actors' streaming generators: {floor * 1e3:.3f} ms per hop)")
    graph = graph_from_yaml(chain_yaml(hops, 0.0), extra_kinds=[Source, Relay])
    _, local_wall = chain_times(LocalExecutor(graph), items)
    with RayExecutor(graph) as executor:
        _, ray_wall = chain_times(executor, items)
    print(f"  flood, {items} items at once: wall local {local_wall * 1e3:.1f} ms, ray {ray_wall * 1e3:.1f} ms -> "
          f"{(ray_wall - local_wall) / (items * crossings) * 1e6:.1f} us per item per hop (queued items travel "
          f"in batches)")
    (local_run, local_cpu), (ray_run, ray_cpu) = run_cost(LocalExecutor(graph)), (0.0, 0.0)
    with RayExecutor(graph) as executor:
        ray_run, ray_cpu = run_cost(executor)
    print(f"  a whole run of one item (start to result), median of 30: local {local_run * 1e3:.2f} ms, "
          f"ray {ray_run * 1e3:.2f} ms; CPU per run of every process of the session: local {local_cpu * 1e3:.2f} "
          f"ms, ray {ray_cpu * 1e3:.2f} ms (the fixed cost of a run on Ray: start calls, stream set-up, reports)")


def run_cost(executor: Any, runs: int = 30) -> tuple[float, float]:
    """Median wall seconds of a one-item run, and CPU seconds per run of the driver, raylet and actors."""
    executor.run({"n": Count(1)})
    times = []
    c0 = session_cpu_seconds()
    for _ in range(runs):
        t0 = time.perf_counter()
        executor.run({"n": Count(1)})
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (session_cpu_seconds() - c0) / runs


def first_packet(executor: Any, repeats: int) -> list[float]:
    executor.run({"text": TEXT})  # warm: first calls of every kernel in every process
    return first_packet_times(executor, {"text": TEXT}, repeats)


def first_audio(checkpoint: Path, repeats: int, threads: int) -> None:
    settings = ["thinker.greedy=true", "thinker.max_new_tokens=64", "talker.max_frames=100", "*.placement.num_gpus=0"]
    graph = load_graph("qwen3_omni", overrides=parse_overrides(settings))
    torch.set_num_threads(threads)
    local = LocalExecutor(graph, checkpoint=Checkpoint.open(checkpoint))
    local.load()
    local_times = first_packet(local, repeats)
    with RayExecutor(graph, checkpoint=checkpoint) as executor:
        executor.load()
        ray_times = first_packet(executor, repeats)
    for label, pick in (("best", min), ("median", statistics.median)):
        local_first, ray_first = pick(local_times), pick(ray_times)
        print(f"first audio packet, qwen3_omni small checkpoint, {label} of {repeats}: local "
              f"{local_first * 1e3:.1f} ms ({threads} thread), ray {ray_first * 1e3:.1f} ms "
              f"({len(executor.stages)} actors) -> ray/local = {ray_first / local_first:.2f} (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=3, help="relays after the source (default 3)")
    parser.add_argument("--items", type=int, default=2000, help="items in the flood run (default 2000)")
    parser.add_argument("--gap", type=float, default=5.0, help="ms between paced items (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the local run (default 1)")
    parser.add_argument("--repeats", type=int, default=7, help="first-packet runs per executor (default 7)")
    parser.add_argument("--checkpoint", type=Path, help="a small checkpoint (default: written to a temp folder)")
    parser.add_argument("--only", choices=("per-hop", "first-packet"), help="run one of the two parts")
    args = parser.parse_args()
    # Actors import this file as a module, so payloads travel by reference as real node kinds' payloads do
    # (classes of a script's __main__ would travel by value, their definition pickled into every message).
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, here)
    import ray_overhead

    ray_overhead.run(args)


def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("RAY_worker_niceness", "0")  # at the local run's priority (see ray_concurrency.py)
    ray.init(include_dashboard=False, logging_level=logging.WARNING, num_cpus=max(8, args.hops + 2))
    if args.only != "first-packet":
        per_hop(args.hops, args.items, args.gap)
    if args.only != "per-hop":
        with tempfile.TemporaryDirectory() as tmp:
            first_audio(args.checkpoint or write_checkpoint(Path(tmp) / "small", "small", seed=0), args.repeats,
                        args.threads)
    ray.shutdown()


if __name__ == "__main__":
    main()
