"""Graph files -> one flat, located description: reads `extends:` chains and applies their edits.

Node kinds are looked up only to choose the ports of inserted nodes (`inserts.py`); ports and configs are
checked in `validate.py`.
"""
from __future__ import annotations

from pathlib import Path

from .composed import Composed
from .errors import GraphIssue, Location, UserError, did_you_mean
from .inserts import KindOf, apply_insert
from .node import Node
from .registry import Registry
from .sections import Sections
from .sources import graph_file_problem, real_path, resolve_graph_ref
from .spec import name_from_file
from .yaml_source import YamlDoc, parse_yaml


def compose_file(path: Path, registry: Registry) -> Composed:
    """Read a graph file and everything it extends. Problems are collected in `Composed.issues`."""
    return _Composer(registry).compose(real_path(Path(path)), chain=())


def compose_text(text: str, registry: Registry, file: str = "<graph>", base_dir: Path | None = None) -> Composed:
    """Like `compose_file` for YAML text (relative `extends:` resolve against `base_dir`, default cwd)."""
    return _Composer(registry).compose_doc_text(text, file, base_dir or Path.cwd(), chain=())


class _Composer:
    def __init__(self, registry: Registry):
        self.registry = registry

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
        spec = Sections(doc)
        out.issues += spec.issues
        if spec.extends is not None:
            out = self._parent(spec.extends, doc, base_dir, chain, out)
        out.order[file] = len(out.order)
        _apply(spec, out, self.registry)
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


def _apply(spec: Sections, out: Composed, registry: Registry) -> None:
    """Apply one file's sections on top of what it extends (or an empty graph)."""
    issues = out.issues
    if spec.name:
        out.name = spec.name
    if spec.description is not None:
        out.description = spec.description
    inherited = set(out.nodes) | out.reported.broken
    # A node whose definition was unusable is reported once; its edges are then skipped, not reported again.
    out.reported.broken |= spec.broken["nodes"] | (spec.broken["replace"] & inherited)
    for name in out.reported.broken:
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
        out.reported.broken.discard(entry.name)
    for name, where in spec.remove:
        if name not in inherited:
            issues.append(GraphIssue("unknown-node", f"cannot remove '{name}': no such inherited node", where.loc(),
                                     node=name, hint=did_you_mean(name, inherited)))
            continue
        out.nodes.pop(name, None)
        out.reported.broken.discard(name)
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
    out.reported.unsure_inputs |= spec.unplaced
    out.reported.claimed |= spec.claimed
    own_new = {e.name for e in spec.nodes}
    for insert, where in spec.insert:
        if insert.node not in spec.broken["nodes"]:
            apply_insert(insert, where, own_new, out, _kinds(out, registry))


def _kinds(out: Composed, registry: Registry) -> KindOf:
    """Node name -> the class of its kind as the graph stands now (None for an unknown node or kind)."""
    def kind_of(name: str) -> type[Node] | None:
        entry = out.nodes.get(name)
        return registry.get(entry.spec.kind) if entry is not None else None
    return kind_of
