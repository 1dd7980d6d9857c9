"""The registry of node kinds: the package's own nodes plus those declared by the `omnigraph.nodes` entry points.

YAML names kinds only; it never names import paths.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import threading
from importlib.metadata import entry_points

from .errors import UserError
from .node import Node

ENTRY_POINT_GROUP = "omnigraph.nodes"


class Registry:
    """Maps kind names to node classes."""

    def __init__(self) -> None:
        self._kinds: dict[str, type[Node]] = {}

    def register(self, cls: type[Node], *, replace: bool = False) -> type[Node]:
        """Add a node class (usable as a decorator). A kind may be registered once unless `replace`."""
        if not (isinstance(cls, type) and issubclass(cls, Node)) or not cls.kind:
            raise TypeError(f"{cls!r} is not a Node subclass with a 'kind' name")
        existing = self._kinds.get(cls.kind)
        if existing is not None and existing is not cls and not replace:
            raise ValueError(f"node kind '{cls.kind}' is already registered by {existing.__module__}")
        self._kinds[cls.kind] = cls
        return cls

    def extended(self, *classes: type[Node]) -> Registry:
        """A copy of this registry with more kinds (later ones replace same-named kinds)."""
        out = Registry()
        out._kinds = dict(self._kinds)
        for cls in classes:
            out.register(cls, replace=True)
        return out

    def get(self, kind: str) -> type[Node] | None:
        return self._kinds.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def __contains__(self, kind: str) -> bool:
        return kind in self._kinds


def _builtin_node_classes() -> list[type[Node]]:
    """Node classes of every `omnigraph.nodes.<kind>.node` module."""
    from .. import nodes as package

    classes = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        name = f"{package.__name__}.{info.name}.node"
        if not info.ispkg or importlib.util.find_spec(name) is None:  # shared code, not a node kind
            continue
        module = importlib.import_module(name)
        classes += [obj for obj in vars(module).values()
                    if isinstance(obj, type) and issubclass(obj, Node) and obj.kind
                    and obj.__module__ == module.__name__]
    return classes


def _entry_point_classes() -> list[type[Node]]:
    classes = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party package must not hide the others
            raise UserError(f"entry point '{ep.name} = {ep.value}' in group '{ENTRY_POINT_GROUP}' "
                            f"failed to load: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise UserError(f"entry point '{ep.name} = {ep.value}' is not an omnigraph Node class")
        classes.append(cls)
    return classes


_default: Registry | None = None
_default_lock = threading.Lock()


def build_registry() -> Registry:
    """A registry of the built-in node kinds and those of installed entry points."""
    registry = Registry()
    for cls in _builtin_node_classes() + _entry_point_classes():
        registry.register(cls)
    return registry


def default_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = build_registry()
        return _default
