"""Graph files -> one flat, located description: reads `extends:` chains and applies their edits.

Nothing here knows node kinds beyond their names: ports and configs are checked in `validate.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import GraphIssue, Location, UserError, did_you_mean
from .sources import graph_file_problem, real_path, resolve_graph_ref
from .spec import (Endpoint, GraphFile, InputSpec, InsertSpec, NodeSpec, check_port_ref, is_valid_name, name_from_file,
                   parse_edge)
from .yaml_source import YamlDoc, parse_yaml


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
    via: Endpoint | None = None  # for an `insert: after:` edge, the port the inserted node stands in for

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
    via: Endpoint | None = None  # for an `insert: after:` output, the port the inserted node stands in for


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
    broken: set[str] = field(default_factory=set)  # nodes whose definition was unusable (already reported)
    unplaced: set[str] = field(default_factory=set)  # nodes whose `insert:` failed (already reported)
    claimed: set[Endpoint] = field(default_factory=set)  # input ports named by graph inputs that were unusable
    complete: bool = True  # False when some file, parent or `nodes:` section could not be read (already reported)
    nodes_at: Location | None = None  # the last file's `nodes:` (where a graph without nodes is reported)
    order: dict[str, int] = field(default_factory=dict)  # file -> its place in the extends chain (parents first)
    # input port -> (the edit that took its inherited edge away, what the edit was, that edge)
    cuts: dict[Endpoint, tuple[Location, str, EdgeEntry]] = field(default_factory=dict)


def compose_file(path: Path) -> Composed:
    """Read a graph file and everything it extends. Problems are collected in `Composed.issues`."""
    return _Composer().compose(real_path(Path(path)), chain=())


def compose_text(text: str, file: str = "<graph>", base_dir: Path | None = None) -> Composed:
    """Like `compose_file` for YAML text (relative `extends:` resolve against `base_dir`, default cwd)."""
    return _Composer().compose_doc_text(text, file, base_dir or Path.cwd(), chain=())


class _Composer:
    def compose(self, path: Path, chain: tuple[Path, ...]) -> Composed:
        problem = graph_file_problem(path)
        if problem:
            out = Composed(name_from_file(str(path)), "", str(path), complete=False)
            out.issues.append(GraphIssue("unreadable-file", f"cannot read graph file: {path} {problem}",
                                         Location(str(path))))
            return out
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out = Composed(name_from_file(str(path)), "", str(path))
            where = Location(str(path))
            if isinstance(exc, UnicodeDecodeError):  # point at the first byte that is not UTF-8
                start = exc.start
                line_start = exc.object.rfind(b"\n", 0, start) + 1
                where = Location(str(path), exc.object.count(b"\n", 0, start) + 1, start - line_start + 1)
            out.issues.append(GraphIssue("unreadable-file", f"cannot read graph file: {exc}", where))
            out.complete = False
            return out
        return self.compose_doc_text(text, str(path), path.parent, chain + (path,))

    def compose_doc_text(self, text: str, file: str, base_dir: Path, chain: tuple[Path, ...]) -> Composed:
        doc, issues = parse_yaml(text, file)
        out = Composed(name_from_file(file), "", file)
        out.issues += issues
        if doc is None:
            out.complete = False
            return out
        spec = _Sections(doc)
        out.issues += spec.issues
        if spec.extends is not None:
            out = self._parent(spec.extends, doc, base_dir, chain, out)
        out.order[file] = len(out.order)
        _apply(spec, out)
        out.nodes_at = doc.loc(("nodes",), key=True)
        if not isinstance(doc.data, dict) or not isinstance(doc.data.get("nodes") or {}, dict):
            out.complete = False
        return out

    def _parent(self, ref: str, doc: YamlDoc, base_dir: Path, chain: tuple[Path, ...], out: Composed) -> Composed:
        where = doc.loc(("extends",))
        try:
            parent_path = resolve_graph_ref(ref, base_dir)
        except UserError as exc:
            out.issues.append(GraphIssue("extends-missing", str(exc), where))
            out.complete = False
            return out
        if parent_path in chain:
            names = " -> ".join(p.name for p in chain + (parent_path,))
            out.issues.append(GraphIssue("extends-cycle", f"'extends' loops back: {names}", where,
                                         hint="a graph may not extend itself, directly or through others"))
            out.complete = False
            return out
        parent = self.compose(parent_path, chain)
        parent.issues = out.issues + parent.issues
        parent.file = out.file
        parent.name = out.name
        return parent


class _Sections:
    """The top-level sections of one file, each checked on its own so one mistake hides no others."""

    def __init__(self, doc: YamlDoc):
        self.doc = doc
        self.issues: list[GraphIssue] = []
        self.name: str | None = None
        self.description: str | None = None
        self.extends: str | None = None
        self.nodes: list[NodeEntry] = []
        self.replace: list[NodeEntry] = []
        self.broken: dict[str, set[str]] = {"nodes": set(), "replace": set()}  # names with unusable definitions
        self.remove: list[tuple[str, Where]] = []
        self.insert: list[tuple[InsertSpec, Where]] = []
        self.unplaced: set[str] = set()  # nodes of `insert:` entries that could not be read
        self.claimed: set[Endpoint] = set()  # ports named by graph inputs that could not be read
        self.edges: list[EdgeEntry] = []
        self.disconnect: list[EdgeEntry] = []
        self.inputs: list[InputEntry] = []
        self.outputs: list[OutputEntry] = []
        for path, key, where, first_line in doc.duplicate_keys:
            code = "duplicate-node" if path in (("nodes",), ("replace",)) else "duplicate-key"
            what = "node" if code == "duplicate-node" else "key"
            self.issues.append(GraphIssue(code, f"{what} '{key}' is defined twice (first at line {first_line})",
                                          where, node=key if code == "duplicate-node" else None))
        data = doc.data
        if not isinstance(data, dict):
            self.issues.append(GraphIssue("not-a-mapping", "a graph file must be a mapping of sections",
                                          doc.loc(()), hint="start with 'nodes:'"))
            return
        fields = GraphFile.model_fields
        for key in data:
            if key not in fields:
                self.issues.append(GraphIssue("unknown-field", f"unknown section '{key}'", doc.loc((key,), key=True),
                                              hint=did_you_mean(str(key), fields)))
        self.name = self._scalar(data, "name")
        if self.name is not None and not self._name_ok(self.name, ("name",), "graph", key=False):
            self.name = None
        self.description = self._scalar(data, "description")
        self.extends = self._scalar(data, "extends")
        self.nodes = self._nodes(data, "nodes")
        self.replace = self._nodes(data, "replace")
        self.remove = [(n, Where(doc, ("remove", i))) for i, n in self._list(data, "remove", str)]
        for i, item in self._list(data, "insert", dict):
            spec = self._model(InsertSpec, item, ("insert", i))
            if spec is not None:
                self.insert.append((spec, Where(doc, ("insert", i))))
            elif isinstance(item.get("node"), str):
                self.unplaced.add(item["node"])
        for section in ("edges", "loops", "disconnect"):
            for i, text in self._list(data, section, str):
                try:
                    src, dst = parse_edge(text)
                except ValueError as exc:
                    self.issues.append(GraphIssue("bad-edge", str(exc), doc.loc((section, i))))
                    continue
                entry = EdgeEntry(src, dst, Where(doc, (section, i)), loop=section == "loops")
                (self.disconnect if section == "disconnect" else self.edges).append(entry)
        for name, value in (self._mapping(data, "inputs") or {}).items():
            spec = self._model(InputSpec, value, ("inputs", name))
            if spec is not None and self._name_ok(name, ("inputs", name), "input"):
                targets = [(check_port_ref(ref), Where(doc, ("inputs", name) + self._to_path(value, i)))
                           for i, ref in enumerate(spec.to)]
                self.inputs.append(InputEntry(name, spec, targets, Where(doc, ("inputs", name))))
            else:  # reported; the ports it names are not also reported as unconnected
                self.claimed |= _port_refs(value)
        for name, ref in (self._mapping(data, "outputs") or {}).items():
            try:
                src = check_port_ref(ref)
            except ValueError as exc:
                self.issues.append(GraphIssue("bad-output", str(exc), doc.loc(("outputs", name))))
                continue
            if self._name_ok(name, ("outputs", name), "output"):
                self.outputs.append(OutputEntry(name, src, Where(doc, ("outputs", name))))

    @staticmethod
    def _to_path(value: Any, i: int) -> tuple:
        if isinstance(value, str):
            return ()
        if isinstance(value, list):
            return (i,)
        return ("to", i)

    def _name_ok(self, name: Any, path: tuple, what: str, key: bool = True) -> bool:
        if is_valid_name(name):
            return True
        self.issues.append(GraphIssue("bad-name", f"{what} name {name!r} must start with a letter or '_' and "
                                      "contain only letters, digits, '_' and '-'", self.doc.loc(path, key=key)))
        return False

    def _scalar(self, data: dict, key: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            self.issues.append(GraphIssue("bad-value", f"'{key}' must be a string", self.doc.loc((key,))))
            return None
        return value

    def _mapping(self, data: dict, key: str) -> dict | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.issues.append(GraphIssue("bad-value", f"'{key}' must be a mapping of names to entries",
                                          self.doc.loc((key,))))
            return None
        return value

    def _list(self, data: dict, key: str, item_type: type) -> list[tuple[int, Any]]:
        """(index, item) of the entries of list `key` that have the right type (others are reported)."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.issues.append(GraphIssue("bad-value", f"'{key}' must be a list", self.doc.loc((key,))))
            return []
        good = []
        for i, item in enumerate(value):
            if isinstance(item, item_type):
                good.append((i, item))
            else:
                self.issues.append(GraphIssue("bad-value", f"each entry of '{key}' must be a {item_type.__name__}"
                                              f" (got {type(item).__name__})", self.doc.loc((key, i))))
        return good

    def _nodes(self, data: dict, key: str) -> list[NodeEntry]:
        entries = []
        for name, value in (self._mapping(data, key) or {}).items():
            spec = self._model(NodeSpec, value, (key, name), node=str(name))
            if spec is None:
                self.broken[key].add(str(name))
            elif self._name_ok(name, (key, name), "node"):
                entries.append(NodeEntry(name, spec, Where(self.doc, (key, name))))
        return entries

    def _model(self, model: type[BaseModel], value: Any, path: tuple, node: str | None = None) -> Any:
        try:
            return TypeAdapter(model).validate_python(value)
        except ValidationError as exc:
            self.issues += pydantic_issues(exc, Where(self.doc, path), model, node=node)
            return None


def pydantic_issues(exc: ValidationError, where: Where, model: type[BaseModel] | None,
                    node: str | None = None, code: str = "bad-value") -> list[GraphIssue]:
    """Map pydantic's errors to located issues (unknown fields get a 'did you mean')."""
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        field_name = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            issues.append(GraphIssue("unknown-field", f"unknown field '{field_name}'", where.loc(*loc, key=True),
                                     node=node, hint=did_you_mean(str(loc[-1]), known)))
        elif err["type"] == "missing":
            issues.append(GraphIssue("missing-field", f"field '{field_name}' is required", where.loc(*loc[:-1]),
                                     node=node))
        else:
            subject = f"'{field_name}': " if field_name else ""
            issues.append(GraphIssue(code, f"{subject}{err['msg']} (got {err.get('input')!r})", where.loc(*loc),
                                     node=node))
    return issues


def _port_refs(value: Any) -> set[Endpoint]:
    """The well-formed 'node.port' targets of a graph input entry, however malformed the rest is."""
    refs = value.get("to") if isinstance(value, dict) else value
    refs = [refs] if isinstance(refs, str) else refs if isinstance(refs, list) else []
    out = set()
    for ref in refs:
        try:
            out.add(check_port_ref(ref))
        except ValueError:
            pass
    return out


def _fields_at(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """Field names of the (nested) model that `loc` points into, for suggestions."""
    for part in loc:
        if model is None:
            return []
        info = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(info, "annotation", None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return list(model.model_fields) if model is not None else []


def _apply(spec: _Sections, out: Composed) -> None:
    """Apply one file's sections on top of what it extends (or an empty graph)."""
    issues = out.issues
    if spec.name:
        out.name = spec.name
    if spec.description is not None:
        out.description = spec.description
    inherited = set(out.nodes) | out.broken
    # A node whose definition was unusable is reported once; its edges are then skipped, not reported again.
    out.broken |= spec.broken["nodes"] | (spec.broken["replace"] & inherited)
    for name in out.broken:
        out.nodes.pop(name, None)
    for entry in spec.nodes:
        if entry.name in out.nodes:
            issues.append(GraphIssue("duplicate-node", f"node '{entry.name}' is already defined by the extended graph",
                                     entry.where.loc(key=True), node=entry.name,
                                     hint="use 'replace:' to change an inherited node"))
            continue
        out.nodes[entry.name] = entry
    for entry in spec.replace:
        if entry.name not in inherited:
            issues.append(GraphIssue("unknown-node", f"cannot replace '{entry.name}': no such inherited node",
                                     entry.where.loc(key=True), node=entry.name,
                                     hint=did_you_mean(entry.name, inherited)))
            continue
        out.nodes[entry.name] = entry
        out.broken.discard(entry.name)
    for name, where in spec.remove:
        if name not in inherited:
            issues.append(GraphIssue("unknown-node", f"cannot remove '{name}': no such inherited node", where.loc(),
                                     node=name, hint=did_you_mean(name, inherited)))
            continue
        out.nodes.pop(name, None)
        out.broken.discard(name)
        for e in out.edges:
            if e.src.node == name and e.dst.node != name:
                out.cuts[e.dst] = (where.loc(), f"'remove: {name}'", e)
        out.edges = [e for e in out.edges if name not in (e.src.node, e.dst.node)]
        out.outputs = {k: o for k, o in out.outputs.items() if o.src.node != name}
        for key, inp in list(out.inputs.items()):
            inp.targets = [t for t in inp.targets if t[0].node != name]
            if not inp.targets:
                del out.inputs[key]
    for cut in spec.disconnect:
        kept = [e for e in out.edges if (e.src, e.dst) != (cut.src, cut.dst)]
        for e in out.edges:
            if e not in kept:
                out.cuts[e.dst] = (cut.where.loc(), f"'disconnect: {cut}'", e)
        if len(kept) == len(out.edges):
            issues.append(GraphIssue("unknown-edge", f"cannot disconnect '{cut}': no such inherited edge",
                                     cut.where.loc(), hint=did_you_mean(str(cut), [str(e) for e in out.edges])))
        out.edges = kept
    out.edges += spec.edges
    for entry in spec.inputs:
        out.inputs[entry.name] = entry
    for entry in spec.outputs:
        out.outputs[entry.name] = entry
    out.unplaced |= spec.unplaced
    out.claimed |= spec.claimed
    own_new = {e.name for e in spec.nodes}
    for insert, where in spec.insert:
        if insert.node not in spec.broken["nodes"]:
            _insert(insert, where, own_new, out)


def _insert(insert: InsertSpec, where: Where, own_new: set[str], out: Composed) -> None:
    if insert.node not in own_new:
        out.issues.append(GraphIssue("unknown-node", f"inserted node '{insert.node}' must be declared under "
                                     "'nodes:' in this file", where.loc("node"), node=insert.node,
                                     hint=did_you_mean(insert.node, own_new)))
        return
    if insert.after is not None:
        _insert_after(insert, where, out)
        return
    src, dst = parse_edge(insert.on)
    match = next((e for e in out.edges if e.src == src and e.dst == dst and not e.loop), None)
    if match is None:
        out.issues.append(GraphIssue("unknown-edge", f"no edge '{src} -> {dst}' to insert '{insert.node}' on",
                                     where.loc("on"), hint=did_you_mean(f"{src} -> {dst}",
                                                                        [str(e) for e in out.edges])))
        out.unplaced.add(insert.node)
        return
    out.edges.remove(match)
    # Ports left as "" are chosen by the validator, which knows the node's kind.
    out.edges += [EdgeEntry(src, Endpoint(insert.node, insert.input or ""), where),
                  EdgeEntry(Endpoint(insert.node, insert.output or ""), dst, where)]


def _insert_after(insert: InsertSpec, where: Where, out: Composed) -> None:
    """Every edge and graph output reading `after` reads the inserted node's output instead."""
    src = check_port_ref(insert.after)
    readers = [e for e in out.edges if e.src == src and not e.loop]
    outputs = [o for o in out.outputs.values() if o.src == src]
    if not readers and not outputs:
        out.issues.append(GraphIssue("unknown-edge", f"nothing reads '{src}' to insert '{insert.node}' after",
                                     where.loc("after"), hint=did_you_mean(str(src), [str(e.src) for e in out.edges])))
        out.unplaced.add(insert.node)
        return
    out.edges = [e for e in out.edges if e not in readers]
    moved = Endpoint(insert.node, insert.output or "")
    out.edges.append(EdgeEntry(src, Endpoint(insert.node, insert.input or ""), where))
    out.edges += [EdgeEntry(moved, e.dst, where, via=src) for e in readers]
    for entry in outputs:
        entry.src, entry.via = moved, src
