"""Executor overhead: a chain of no-op nodes over a stream, against plain chained generators in one process.

    python examples/bench/runtime_overhead.py [--nodes 10] [--items 10000] [--repeats 3]

Prints the overhead per node per item (target: under 20 microseconds) and the ratio to the baseline.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Iterator

from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.node import Node
from omnigraph.runtime.payloads import Payload
from omnigraph.runtime.ports import Input, Output
from omnigraph.testing import graph_from_yaml


@dataclass(frozen=True)
class Item(Payload):
    value: int


class Source(Node):
    kind = "bench_source"
    inputs = (Input("count", Item),)
    outputs = (Output("items", Item, stream=True),)

    def stream(self, count: Item) -> Iterator[tuple[str, Item]]:
        for i in range(count.value):
            yield "items", Item(i)


class Passthrough(Node):
    kind = "bench_passthrough"
    inputs = (Input("items", Item, stream=True),)
    outputs = (Output("items", Item, stream=True),)

    def stream(self, items: Iterator[Item]) -> Iterator[tuple[str, Item]]:
        for item in items:
            yield "items", item


def chain_yaml(nodes: int) -> str:
    names = [f"p{i}" for i in range(nodes)]
    lines = ["inputs: {count: src.count}", "nodes:", "  src: {kind: bench_source}"]
    lines += [f"  {n}: {{kind: bench_passthrough}}" for n in names]
    lines.append("edges:")
    lines += [f"  - {a}.items -> {b}.items" for a, b in zip(["src"] + names, names)]
    lines.append(f"outputs: {{items: {names[-1]}.items}}")
    return "\n".join(lines)


def baseline(nodes: int, items: int) -> float:
    """The same work as plain generators: each stage re-yields `(port, item)` pairs like a node does."""
    t0 = time.perf_counter()
    stream: Iterator = (item for _, item in Source().stream(Item(items)))
    for _ in range(nodes):
        stream = (item for _, item in Passthrough().stream(stream))
    out = list(stream)
    assert len(out) == items
    return time.perf_counter() - t0


def executor_time(executor: LocalExecutor, items: int) -> float:
    t0 = time.perf_counter()
    result = executor.run({"count": Item(items)})
    assert len(result.outputs["items"]) == items
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--buffer", type=int, default=64)
    args = parser.parse_args()
    graph = graph_from_yaml(chain_yaml(args.nodes), extra_kinds=[Source, Passthrough])
    executor = LocalExecutor(graph, buffer_size=args.buffer)
    executor.run({"count": Item(10)})  # warm up threads and imports
    base = min(baseline(args.nodes, args.items) for _ in range(args.repeats))
    ours = min(executor_time(executor, args.items) for _ in range(args.repeats))
    per = (ours - base) / (args.nodes * args.items) * 1e6
    print(f"chain of {args.nodes} no-op nodes, {args.items} stream items, best of {args.repeats}")
    print(f"  plain generators : {base * 1e3:9.1f} ms")
    print(f"  local executor   : {ours * 1e3:9.1f} ms   ({ours / base:.1f}x the baseline)")
    print(f"  overhead         : {per:9.2f} us per node per item   (target < 20)")


if __name__ == "__main__":
    main()
