"""Declared loops whose two nodes are loaded in one process: `a.out -> b.in` (a loop edge) with a direct edge
`b.x -> a.y` back; `b.fuse_loop(a)` may then compute the loop for both (the Talker and its code predictor).

A node computing a loop knows which runs' items of `a.out` are on their way before they travel (the frames of
one batched step). Each node loaded here that `a.out` feeds directly and that takes such notices (`ExpectsItems`,
e.g. to compute those runs' next items in one call) is offered to `b`, when `b` gives them (`AnnouncesItems`)."""
from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

from .graph import Graph
from .node import Node


@runtime_checkable
class ExpectsItems(Protocol):
    def items_coming(self, port: str, notices: list[tuple[str, int]]) -> None:
        """Items (run id, index in that run's stream) of input `port` are on their way to this node."""


@runtime_checkable
class AnnouncesItems(Protocol):
    def announce_loop_output(self, consumer: ExpectsItems, port: str) -> None:
        """Tell `consumer` (its input `port`) of the fused loop's output items as they are computed."""


def fuse_loops(graph: Graph, nodes: dict[str, Node], here: Iterable[str]) -> None:
    """Offer each loop of nodes `here` (loaded) to the node it feeds, and that node the loop output's readers
    that take notices; idempotent."""
    here = set(here)
    for loop in graph.edges:
        a, b = loop.src.node, loop.dst.node
        if loop.loop and {a, b} <= here and any(not e.loop and e.src.node == b and e.dst.node == a
                                                  for e in graph.edges):
            nodes[b].fuse_loop(nodes[a])
            for reader in graph.edges:
                consumer = nodes.get(reader.dst.node) if reader.dst.node in here else None
                if (not reader.loop and reader.src == loop.src and isinstance(consumer, ExpectsItems)
                        and isinstance(nodes[b], AnnouncesItems)):
                    nodes[b].announce_loop_output(consumer, reader.dst.port)
