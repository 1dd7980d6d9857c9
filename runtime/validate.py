"""Checks a composed graph against the registry and builds a `Graph`; reports every problem at once."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import ValidationError

from .compose import compose_file, compose_text
from .composed import Composed, EdgeEntry, NodeEntry, Where
from .errors import GraphIssue, GraphValidationError, Location, did_you_mean
from .graph import Graph, GraphEdge, GraphInput, GraphNode, GraphOutput
from .inputs import default_problem
from .node import Node
from .overrides import ALL_NODES, PLACEMENT, Setting, flag_of, value_of
from .ports import Port, feed_problem
from .registry import Registry, default_registry
from .sections import pydantic_issues
from .sources import find_graph
from .spec import Endpoint, Placement

MAX_CYCLES_REPORTED = 5


def load_graph(source: str | Path, *, overrides: dict[tuple[str, str], Any] | None = None,
               registry: Registry | None = None) -> Graph:
    """Compose and validate a graph file (a path or a shipped name). Raises GraphValidationError."""
    path = source if isinstance(source, Path) else find_graph(str(source))
    registry = registry or default_registry()
    return build_graph(compose_file(path, registry), overrides=overrides, registry=registry)


def load_graph_text(text: str, *, file: str = "<graph>", base_dir: Path | None = None,
                    overrides: dict[tuple[str, str], Any] | None = None,
                    registry: Registry | None = None) -> Graph:
    """Like `load_graph` for YAML text."""
    registry = registry or default_registry()
    return build_graph(compose_text(text, registry, file, base_dir), overrides=overrides, registry=registry)


def build_graph(composed: Composed, *, overrides: dict[tuple[str, str], Any] | None = None,
                registry: Registry | None = None) -> Graph:
    checker = _Checker(composed, registry or default_registry(), overrides or {})
    graph = checker.run()
    if checker.issues:
        raise GraphValidationError(checker.issues)
    assert graph is not None
    return graph


class _Checker:
    def __init__(self, composed: Composed, registry: Registry, overrides: dict[tuple[str, str], Any]):
        self.c = composed
        self.reported = composed.reported
        self.registry = registry
        self.overrides = overrides
        self.issues: list[GraphIssue] = list(composed.issues)
        self.classes: dict[str, type[Node]] = {}

    def issue(self, code: str, message: str, where: Location, node: str | None = None, port: str | None = None,
              hint: str | None = None) -> None:
        self.issues.append(GraphIssue(code, message, where, node, port, hint))

    def run(self) -> Graph | None:
        nodes = self._nodes()
        edges = self._edges()
        inputs = self._inputs()
        outputs = self._outputs()
        self._unconnected()
        self._cycles(edges)
        self._loops(edges)
        if not self.c.nodes and not self.reported.broken and self.c.complete:
            self.issue("no-nodes", "the graph has no nodes", self.c.nodes_at or Location(self.c.file),
                       hint="add nodes under 'nodes:'")
        if self.issues:
            return None
        return Graph(self.c.name, self.c.description, self.c.file, nodes, [e for e, _ in edges], inputs, outputs)

    # -- nodes -------------------------------------------------------------------------------------------
    def _nodes(self) -> dict[str, GraphNode]:
        for (name, field), override in self.overrides.items():
            if name == ALL_NODES and field.startswith(PLACEMENT):
                continue  # checked with each node's placement below
            if name == ALL_NODES:
                kinds = [self.registry.get(e.spec.kind) for e in self.c.nodes.values()]
                if not any(cls is not None and field in cls.Config.model_fields for cls in kinds):
                    self.issue("unknown-field", f"no node of graph '{self.c.name}' has a '{field}' setting",
                               flag_of(override, f"--{field.replace('_', '-')}"),
                               hint="this flag does not apply to this graph")
                continue
            if name not in self.c.nodes:
                shown = "" if isinstance(override, Setting) else f"--set {name}.{field}: "  # else the place says it
                self.issue("unknown-node", f"{shown}no node named '{name}'", flag_of(override, "--set"),
                           node=name, hint=did_you_mean(name, self.c.nodes))
        out = {}
        for name, entry in self.c.nodes.items():
            cls = self.registry.get(entry.spec.kind)
            if cls is None:
                self.issue("unknown-kind", f"unknown node kind '{entry.spec.kind}'", entry.where.loc("kind"),
                           node=name, hint=did_you_mean(entry.spec.kind, self.registry.kinds()))
                continue
            self.classes[name] = cls
            for_node = {f: o for (n, f), o in self.overrides.items() if n == ALL_NODES and f in cls.Config.model_fields}
            for_node.update({f: o for (n, f), o in self.overrides.items() if n == name and not f.startswith(PLACEMENT)})
            config = dict(entry.spec.config) | {f: value_of(o) for f, o in for_node.items()}
            try:
                validated = cls.Config.model_validate(config)
            except ValidationError as exc:
                flags = {f: flag_of(o, f"--set {name}.{f}") for f, o in for_node.items()}
                where = _ConfigWhere(Where(entry.where.doc, entry.where.path + ("config",)), flags)
                self.issues += pydantic_issues(exc, where, cls.Config, node=name, code="bad-config")
                continue
            except Exception as exc:  # a kind's own validator that raised something other than ValueError
                self.issue("bad-config", f"config rejected by {cls.kind}: {type(exc).__name__}: {exc}",
                           entry.where.loc("config"), node=name)
                continue
            placement = self._placement(name, entry)
            if placement is None:
                continue
            out[name] = GraphNode(name, cls.kind, cls, validated, entry.spec.weights, placement, entry.spec.doc,
                                  entry.where.loc("placement"), entry.where.loc(key=True))
        self._group_conflicts()
        return out

    def _placement(self, name: str, entry: NodeEntry) -> Placement | None:
        """The node's placement with `--set NODE.placement.FIELD=VALUE` (or `*.placement...`) applied."""
        ordered = sorted(self.overrides.items(), key=lambda item: item[0][0] != ALL_NODES)  # the node's own win
        changes = {f[len(PLACEMENT):]: o for (n, f), o in ordered if f.startswith(PLACEMENT) and n in (ALL_NODES, name)}
        if not changes:
            return entry.spec.placement
        data = entry.spec.placement.model_dump(exclude_unset=True) | {f: value_of(o) for f, o in changes.items()}
        try:
            return Placement.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(x) for x in err["loc"])
                override = changes.get(str(err["loc"][0])) if err["loc"] else None
                shown = f"'{field}'" if isinstance(override, Setting) else f"--set {name}.placement.{field}"
                self.issue("bad-placement", f"{shown}: {err['msg']} (got {err.get('input')!r})",
                           flag_of(override, "--set"), node=name,
                           hint=f"placement fields: {', '.join(Placement.model_fields)}")
            return None

    def _group_conflicts(self) -> None:
        """Nodes sharing a placement group share one process: they must agree on replicas and device."""
        groups: dict[str, list[NodeEntry]] = {}
        for entry in self.c.nodes.values():
            if entry.spec.placement.group:
                groups.setdefault(entry.spec.placement.group, []).append(entry)
        for group, entries in groups.items():
            for field in ("replicas", "device"):
                chosen = {e.name: getattr(e.spec.placement, field) for e in entries
                          if field in e.spec.placement.model_fields_set}
                if len(set(chosen.values())) > 1:
                    last = [e for e in entries if e.name in chosen][-1]
                    listed = ", ".join(f"{n}: {v}" for n, v in chosen.items())
                    self.issue("placement-conflict", f"nodes of placement group '{group}' ask for different "
                               f"{field} ({listed})", last.where.loc("placement", field), node=last.name,
                               hint=f"a group is one process: give '{field}' once, or the same value on each node")

    # -- edges -------------------------------------------------------------------------------------------
    def _blame(self, written: Where, nodes: tuple[str, ...], what: str) -> tuple[Location, str]:
        """Where to report a problem of an item (`what`, written at `written`) that links `nodes`, and context.

        An inherited item broken by a later file's `replace:` of one of its nodes is reported at that replace,
        naming the item's own place as context: the user's edit caused it.
        """
        written_in = self.c.order[written.doc.file]
        for name in nodes:
            entry = self.c.nodes.get(name)
            if entry is not None and self._replaced(name) and self.c.order[entry.where.doc.file] > written_in:
                return entry.where.loc(key=True), f" (in the inherited {what}, defined at {written.loc()})"
        return written.loc(), ""

    def _replaced(self, name: str) -> bool:
        return self.c.nodes[name].where.path[:1] == ("replace",)

    def _port(self, end: Endpoint, where: Location, *, output: bool, context: str = "") -> Port | None:
        """The port an edge end names, or None (with an issue) if it does not exist."""
        if end.node in self.reported.broken:  # its definition was unusable, already reported
            return None
        if end.node not in self.c.nodes:
            self.issue("unknown-node", f"no node named '{end.node}'", where, node=end.node,
                       hint=did_you_mean(end.node, self.c.nodes))
            return None
        cls = self.classes.get(end.node)
        if cls is None:  # unknown kind, already reported
            return None
        ports = cls.outputs if output else cls.inputs
        port = next((p for p in ports if p.name == end.port), None)
        if port is None:
            side, other = ("output", cls.inputs) if output else ("input", cls.outputs)
            if context and self._replaced(end.node):
                message = f"the new kind of '{end.node}', {cls.kind}, has no {side} port '{end.port}'"
            elif any(p.name == end.port for p in other):
                message = (f"'{end.port}' is an {'input' if output else 'output'} port of '{end.node}' "
                           f"({cls.kind}); edges run from outputs to inputs")
            else:
                message = f"node '{end.node}' ({cls.kind}) has no {side} port '{end.port}'"
            self.issue("unknown-port", message + context, where, node=end.node, port=end.port,
                       hint=did_you_mean(end.port, [p.name for p in ports]))
        return port

    def _edges(self) -> list[tuple[GraphEdge, EdgeEntry]]:
        good: list[tuple[GraphEdge, EdgeEntry]] = []
        self.fed: dict[Endpoint, Location] = {}
        for entry in self.c.edges:
            if self._backwards(entry, entry.where.loc()):
                continue
            where, context = self._blame(entry.where, (entry.src.node, entry.dst.node), f"edge {entry}")
            src = self._port(entry.src, where, output=True, context=context)
            dst = self._port(entry.dst, where, output=False, context=context)
            if dst is None and entry.dst.node in self.classes:  # which input was meant is unknown
                self.reported.unsure_inputs.add(entry.dst.node)
            if src is not None and dst is not None and self._edge_ok(entry, src, dst, where, context):
                if not self._fed_twice(entry.dst, where):
                    good.append((GraphEdge(entry.src, entry.dst, src, entry.loop), entry))
            else:  # a bad edge still connects its input: do not also report the input as unconnected
                self.fed.setdefault(entry.dst, where)
        return good

    def _backwards(self, entry: EdgeEntry, where: Location) -> bool:
        """Report an edge written input -> output as one issue that says how to turn it round."""
        src_cls, dst_cls = self.classes.get(entry.src.node), self.classes.get(entry.dst.node)
        if src_cls is None or dst_cls is None:
            return False
        if src_cls.output_port(entry.src.port) or dst_cls.input_port(entry.dst.port):
            return False
        if not (src_cls.input_port(entry.src.port) and dst_cls.output_port(entry.dst.port)):
            return False
        self.issue("unknown-port", f"edge {entry} runs from an input port to an output port; edges run from "
                   "outputs to inputs", where, node=entry.src.node, port=entry.src.port,
                   hint=f"did you mean '{entry.dst} -> {entry.src}'?")
        self.fed.setdefault(entry.src, where)  # the input it names is connected, the wrong way round
        return True

    def _edge_ok(self, entry: EdgeEntry, src: Port, dst: Port, where: Location, context: str) -> bool:
        problem = feed_problem(src, dst)
        if problem:
            code, message = problem
            self.issue(code, f"{entry}: {message}{context}", where, node=entry.dst.node, port=entry.dst.port)
            return False
        if entry.loop and not src.is_stream:
            self.issue("bad-loop", f"loop edge {entry} connects whole-value ports; a value cannot feed back",
                       where, node=entry.dst.node, port=entry.dst.port, hint="loop edges must be streams")
            return False
        return True

    def _fed_twice(self, dst: Endpoint, where: Location) -> bool:
        first = self.fed.get(dst)
        if first is not None:
            self.issue("duplicate-input", f"input '{dst}' is fed twice (first at {first})", where,
                       node=dst.node, port=dst.port, hint="an input port takes one edge; add a node to merge")
            return True
        self.fed[dst] = where
        return False

    # -- inputs and outputs ------------------------------------------------------------------------------
    def _inputs(self) -> dict[str, GraphInput]:
        out = {}
        for name, entry in self.c.inputs.items():
            ports: list[Port] = []
            for end, written in entry.targets:
                where, context = self._blame(written, (end.node,), f"graph input '{name}'")
                port = self._port(end, where, output=False, context=context)
                if port is None and end.node in self.classes:
                    self.reported.unsure_inputs.add(end.node)
                if port is None or self._fed_twice(end, where):
                    continue
                if ports and port.type is not ports[0].type:
                    self.issue("type-mismatch", f"graph input '{name}' feeds {ports[0].type.__name__} and "
                               f"{port.type.__name__} ports{context}", where, node=end.node, port=end.port,
                               hint="use one graph input per payload type")
                ports.append(port)
            default = entry.spec.default
            problem = default_problem(ports[0], default) if ports and default is not None else None
            if problem:
                self.issue("bad-default", f"input '{name}' has default {default!r}: {problem}",
                           entry.where.loc("default"), hint=f"give a value like --input {name}=...")
            if ports and len(ports) == len(entry.targets):
                out[name] = GraphInput(name, tuple(e for e, _ in entry.targets), ports[0], entry.spec.required,
                                       entry.spec.default, entry.spec.doc)
        return out

    def _outputs(self) -> dict[str, GraphOutput]:
        out = {}
        for name, entry in self.c.outputs.items():
            where, context = self._blame(entry.where, (entry.src.node,), f"graph output '{name}'")
            port = self._port(entry.src, where, output=True, context=context)
            if port is not None:
                out[name] = GraphOutput(name, entry.src, port)
        return out

    def _unconnected(self) -> None:
        for name, cls in self.classes.items():
            if name in self.reported.unsure_inputs:
                continue
            entry = self.c.nodes[name]
            for port in cls.inputs:
                end = Endpoint(name, port.name)
                if port.required and end not in self.fed and end not in self.reported.claimed:
                    message = f"required input '{port.name}' ({port.describe()}) of '{name}' ({cls.kind}) has no edge"
                    where = entry.where.loc(key=True)
                    if end in self.c.cuts:  # an edit took its inherited edge away: blame the edit
                        where, edit, edge = self.c.cuts[end]
                        message += f": {edit} took away its edge {edge} (defined at {edge.where.loc()})"
                    self.issue("unconnected-input", message, where, node=name, port=port.name,
                               hint=f"add an edge '<node>.<port> -> {end}' or a graph input")

    def _cycles(self, edges: list[tuple[GraphEdge, EdgeEntry]]) -> None:
        dag = nx.DiGraph()
        last: dict[tuple[str, str], tuple[int, Location]] = {}  # node pair -> (order, place) of its last edge
        for i, (edge, entry) in enumerate(edges):
            if not edge.loop:
                dag.add_edge(edge.src.node, edge.dst.node)
                last[(edge.src.node, edge.dst.node)] = (i, entry.where.loc())
        for n, cycle in enumerate(nx.simple_cycles(dag)):
            if n == MAX_CYCLES_REPORTED:
                break
            # Blame the edge written last: rotate the cycle so that it is the closing hop.
            hops = [(cycle[k], cycle[(k + 1) % len(cycle)]) for k in range(len(cycle))]
            k = max(range(len(hops)), key=lambda k: last[hops[k]][0])
            cycle = cycle[k + 1:] + cycle[:k + 1]
            path = " -> ".join(cycle + [cycle[0]])
            self.issue("cycle", f"cycle {path}", last[hops[k]][1], node=cycle[0],
                       hint="declare the feedback edge under 'loops:' (stream ports only)")

    def _loops(self, edges: list[tuple[GraphEdge, EdgeEntry]]) -> None:
        """Each loop edge closes a cycle (through any edges), and each ring of nodes it closes needs a required
        input fed from outside the ring, or nothing starts it."""
        ring = nx.DiGraph((edge.src.node, edge.dst.node) for edge, _ in edges)
        for edge, entry in edges:
            if edge.loop and not nx.has_path(ring, edge.dst.node, edge.src.node):
                self.issue("not-a-loop", f"loop edge {edge} closes no cycle", entry.where.loc(),
                           node=edge.dst.node, port=edge.dst.port, hint="list it under 'edges:'")
        feeders: dict[Endpoint, str | None] = {e.dst: e.src.node for e in self.c.edges}  # None: a graph input
        feeders.update({end: None for entry in self.c.inputs.values() for end, _ in entry.targets})
        for members in nx.strongly_connected_components(ring):
            loops = [(edge, entry) for edge, entry in edges
                     if edge.loop and edge.src.node in members and edge.dst.node in members]
            if not loops or members & self.reported.unsure_inputs:
                continue
            required = [Endpoint(n, p.name) for n in sorted(members) for p in self.classes[n].inputs if p.required]
            if any(end not in feeders or feeders[end] not in members for end in required):
                continue  # fed from outside (or unconnected, which is reported on its own)
            edge, entry = loops[0]
            self.issue("unfed-loop", f"the loop through {', '.join(sorted(members))} has no input from outside "
                       "the loop: nothing can start it", entry.where.loc(), node=edge.dst.node, port=edge.dst.port,
                       hint=f"feed one of {', '.join(map(str, required))} from a node outside the loop or from "
                       "a graph input")


class _ConfigWhere:
    """Locates config errors: at `config.<field>` in the YAML, or at the flag that gave the value."""

    def __init__(self, where: Where, flags: dict[str, Location]):
        self.where, self.flags = where, flags

    def loc(self, *sub: Any, key: bool = False) -> Location:
        if sub and sub[0] in self.flags:
            return self.flags[sub[0]]
        return self.where.loc(*sub, key=key)
