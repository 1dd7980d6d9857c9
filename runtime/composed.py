"""A graph after `extends:` is applied: its items, each with the place it was written, before kinds are checked."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import GraphIssue, Location
from .spec import Endpoint, InputSpec, NodeSpec
from .yaml_source import YamlDoc


@dataclass(frozen=True)
class Where:
    """A path inside one YAML document, for error locations."""

    doc: YamlDoc
    path: tuple = ()

    def loc(self, *sub: Any, key: bool = False) -> Location:
        return self.doc.loc(self.path + sub, key=key)


@dataclass
class NodeEntry:
    name: str
    spec: NodeSpec
    where: Where


@dataclass
class EdgeEntry:
    src: Endpoint
    dst: Endpoint
    where: Where
    loop: bool = False

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}"


@dataclass
class InputEntry:
    name: str
    spec: InputSpec
    targets: list[tuple[Endpoint, Where]]
    where: Where


@dataclass
class OutputEntry:
    name: str
    src: Endpoint
    where: Where


@dataclass
class Reported:
    """What problems already reported make unknowable, so that their consequences are not reported again.

    Composition and validation both add to it; only validation reads it.
    """

    broken: set[str] = field(default_factory=set)  # nodes whose definition was unusable: their edges are skipped
    unsure_inputs: set[str] = field(default_factory=set)  # nodes whose inputs may lack an edge because of one
    claimed: set[Endpoint] = field(default_factory=set)  # input ports something unusable was meant to feed


@dataclass
class Composed:
    """A graph after `extends:` is applied: every item keeps the place it was written."""

    name: str
    description: str
    file: str
    nodes: dict[str, NodeEntry] = field(default_factory=dict)
    edges: list[EdgeEntry] = field(default_factory=list)
    inputs: dict[str, InputEntry] = field(default_factory=dict)
    outputs: dict[str, OutputEntry] = field(default_factory=dict)
    issues: list[GraphIssue] = field(default_factory=list)
    reported: Reported = field(default_factory=Reported)
    complete: bool = True  # False when some file, parent or `nodes:` section could not be read (already reported)
    nodes_at: Location | None = None  # the last file's `nodes:` (where a graph without nodes is reported)
    order: dict[str, int] = field(default_factory=dict)  # file -> its place in the extends chain (parents first)
    # input port -> (the edit that took its inherited edge away, what the edit was, that edge)
    cuts: dict[Endpoint, tuple[Location, str, EdgeEntry]] = field(default_factory=dict)
