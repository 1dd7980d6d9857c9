"""Safe YAML loading that remembers where every key and value was written."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import GraphIssue, Location

Path_ = tuple  # a path into the document: keys and list indices
# Floats such as `1e-3` that YAML 1.2 reads as numbers but PyYAML (YAML 1.1) as text: read as numbers too, since
# configs are strict and would refuse the text.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")
_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")  # e.g. not !!python/object


@dataclass
class YamlDoc:
    """Plain data from one YAML document plus the location of every key and value in it."""

    file: str
    data: Any
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # (mapping path, key, where the repeat is, line of the first occurrence)
    duplicate_keys: list[tuple[Path_, Any, Location, int]] = field(default_factory=list)

    def loc(self, path: Path_ = (), *, key: bool = False) -> Location:
        """Location of `path` (its key when `key`), falling back to the nearest enclosing item."""
        path = tuple(path)
        while True:
            marks = self.key_marks if key and path in self.key_marks else self.value_marks
            if path in marks:
                line, col = marks[path]
                return Location(self.file, line, col)
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]


class _Builder:
    """Turns a composed YAML node tree into plain data, recording marks and duplicate keys."""

    MAX_DEPTH = 100
    MAX_VALUES = 100_000  # aliases can make a small file expand to billions of values

    def __init__(self, doc: YamlDoc):
        self.doc = doc
        self.constructor = yaml.SafeLoader("")  # only its safe scalar constructors are used
        self.count = 0

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.doc.value_marks[path] = _mark(node)
        self.count += 1
        if depth > self.MAX_DEPTH:
            raise _Unsupported(node, "nesting is too deep (recursive alias?)")
        if self.count > self.MAX_VALUES:
            raise _Unsupported(node, f"more than {self.MAX_VALUES} values (aliases expanding?)")
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_COLLECTION_TAGS:
            raise _Unsupported(node, f"unsupported YAML tag {node.tag!r} (only plain data is allowed)")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if node.tag == "tag:yaml.org,2002:str" and node.style is None and is_exponent_float(node.value):
            return float(node.value)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise _Unsupported(node, f"unsupported YAML tag {node.tag!r} (only plain data is allowed)") from exc
        except Exception as exc:  # e.g. `2024-13-45` (read as a date) or `!!int abc`
            kind = node.tag.rsplit(":", 1)[-1]
            raise _Unsupported(node, f"not valid YAML: cannot read {node.value!r} as {kind}: {exc} "
                               "(quote it to keep it as text)", code="yaml-syntax") from exc

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict:
        out: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Unsupported(key_node, "YAML merge keys ('<<') are not supported; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Unsupported(key_node, "mapping keys must be plain scalars")
            # Keys stay strings: YAML 1.1 would read `on:` or `no:` as booleans.
            key = key_node.value if key_node.style is None else self.build(key_node, path + ("<key>",), depth + 1)
            if key in out:
                line, col = _mark(key_node)
                first_line = self.doc.key_marks[path + (key,)][0]
                self.doc.duplicate_keys.append((path, key, Location(self.doc.file, line, col), first_line))
                continue
            self.doc.key_marks[path + (key,)] = _mark(key_node)
            out[key] = self.build(value_node, path + (key,), depth + 1)
        self.doc.value_marks.pop(path + ("<key>",), None)
        return out


def is_exponent_float(text: str) -> bool:
    """Whether unquoted `text` is a float in exponent form without a dot before the `e` (e.g. `1e-3`)."""
    return bool(_EXPONENT_FLOAT.match(text))


class _Unsupported(Exception):
    def __init__(self, node: yaml.Node, message: str, code: str = "yaml-unsupported"):
        super().__init__(message)
        self.node, self.code = node, code


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def parse_yaml(text: str, file: str) -> tuple[YamlDoc | None, list[GraphIssue]]:
    """Parse one YAML document safely: the document (None if unusable) and why it is unusable.

    Duplicate keys do not make a document unusable: they are listed in `YamlDoc.duplicate_keys`.
    """
    doc = YamlDoc(file, None)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        context = exc.context
        if context and exc.context_mark and mark is not exc.context_mark:
            context += f" (started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}):"
        problem = " ".join(str(p) for p in (context, exc.problem) if p)
        return None, [GraphIssue("yaml-syntax", f"not valid YAML: {problem}", where)]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        before = text[:exc.position]
        where = Location(file, before.count("\n") + 1, exc.position - before.rfind("\n"))
        return None, [GraphIssue("yaml-syntax", f"not valid YAML: unacceptable character #x{exc.character:04x}",
                                 where, hint="control characters are not allowed")]
    except yaml.YAMLError as exc:
        return None, [GraphIssue("yaml-syntax", f"not valid YAML: {exc}", Location(file, 1, 1))]
    except RecursionError:
        return None, [GraphIssue("yaml-syntax", "not valid YAML: nesting is too deep", Location(file, 1, 1))]
    if root is None:
        return None, [GraphIssue("empty-graph", "the file is empty", Location(file, 1, 1),
                                 hint="a graph needs at least 'nodes:'")]
    builder = _Builder(doc)
    try:
        doc.data = builder.build(root, ())
    except _Unsupported as exc:
        line, col = _mark(exc.node)
        return None, [GraphIssue(exc.code, str(exc), Location(file, line, col))]
    return doc, []
