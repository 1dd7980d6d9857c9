"""A validated graph: resolved node classes and configs, typed edges, inputs and outputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .errors import Location
from .node import Node, NodeConfig
from .ports import Port
from .spec import Endpoint, Placement


@dataclass(frozen=True)
class GraphNode:
    name: str
    kind: str
    cls: type[Node]
    config: NodeConfig
    weights: str | None
    placement: Placement
    doc: str = ""
    placement_at: Location | None = None  # where the YAML places it (for placement errors)
    defined_at: Location | None = None  # where the YAML names it

    def build(self) -> Node:
        """A fresh, unloaded node instance (cheap)."""
        return self.cls(self.config, name=self.name, weights=self.weights)


@dataclass(frozen=True)
class GraphEdge:
    src: Endpoint
    dst: Endpoint
    port: Port  # the source's output port (its type and mode travel on the edge)
    loop: bool = False

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}"


@dataclass(frozen=True)
class GraphInput:
    name: str
    targets: tuple[Endpoint, ...]
    port: Port  # the first target's input port: its payload type parses command-line values
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class GraphOutput:
    name: str
    src: Endpoint
    port: Port


@dataclass
class Graph:
    """What executors run. Built only by `validate.build_graph`, so every edge is known to be sound."""

    name: str
    description: str
    file: str
    nodes: dict[str, GraphNode]
    edges: list[GraphEdge]
    inputs: dict[str, GraphInput]
    outputs: dict[str, GraphOutput]
    _order: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        dag = nx.DiGraph()
        dag.add_nodes_from(self.nodes)
        dag.add_edges_from((e.src.node, e.dst.node) for e in self.edges if not e.loop)
        self._order = list(nx.lexicographical_topological_sort(dag))

    def topological_order(self) -> list[str]:
        """Node names with producers before consumers (loop edges ignored)."""
        return list(self._order)

    def edges_into(self, node: str) -> list[GraphEdge]:
        return [e for e in self.edges if e.dst.node == node]

    def edges_from(self, node: str) -> list[GraphEdge]:
        return [e for e in self.edges if e.src.node == node]

    def to_networkx(self) -> nx.MultiDiGraph:
        """Nodes carry `kind` and `placement`; edges carry ports, payload type, mode and `loop`."""
        g = nx.MultiDiGraph(name=self.name)
        for node in self.nodes.values():
            g.add_node(node.name, kind=node.kind, placement=node.placement)
        for e in self.edges:
            g.add_edge(e.src.node, e.dst.node, src_port=e.src.port, dst_port=e.dst.port,
                       type=e.port.type.__name__, mode=e.port.mode.value, loop=e.loop)
        return g
