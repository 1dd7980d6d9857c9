"""Declared loops whose two nodes are loaded in one process: `a.out -> b.in` (a loop edge) with a direct edge
`b.x -> a.y` back; `b.fuse_loop(a)` may then compute the loop for both (the Talker and its code predictor)."""
from __future__ import annotations

from typing import Iterable

from .graph import Graph
from .node import Node


def fuse_loops(graph: Graph, nodes: dict[str, Node], here: Iterable[str]) -> None:
    """Offer each loop of nodes `here` (loaded) to the node it feeds; idempotent."""
    here = set(here)
    for loop in graph.edges:
        a, b = loop.src.node, loop.dst.node
        if loop.loop and {a, b} <= here and any(not e.loop and e.src.node == b and e.dst.node == a
                                                  for e in graph.edges):
            nodes[b].fuse_loop(nodes[a])
