"""The top-level sections of one graph file, read into located entries; each checked on its own."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .composed import EdgeEntry, InputEntry, NodeEntry, OutputEntry, Where
from .errors import GraphIssue, did_you_mean
from .spec import Endpoint, GraphFile, InputSpec, InsertSpec, NodeSpec, check_port_ref, is_valid_name, parse_edge
from .yaml_source import YamlDoc


class Sections:
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
