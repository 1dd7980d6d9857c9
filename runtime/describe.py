"""Human-readable descriptions of node kinds (for `omnigraph nodes`)."""
from __future__ import annotations

import inspect

from pydantic_core import PydanticUndefined

from .node import Node


def describe_kind(cls: type[Node]) -> str:
    doc = inspect.getdoc(inspect.getmodule(cls)) or inspect.getdoc(cls) or ""
    lines = [f"{cls.kind}: {doc.splitlines()[0] if doc else ''}".rstrip()]
    for title, ports in (("inputs", cls.inputs), ("outputs", cls.outputs)):
        lines.append(f"  {title}:" + ("" if ports else " none"))
        for port in ports:
            lines.append(f"    {port.name}: {port.describe()}" + (f"  - {port.doc}" if port.doc else ""))
    fields = cls.Config.model_fields
    lines.append("  config:" + ("" if fields else " none"))
    for name, info in fields.items():
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
        default = "required" if info.default is PydanticUndefined and info.default_factory is None else (
            f"default {info.default!r}" if info.default_factory is None else "default computed")
        lines.append(f"    {name}: {annotation} ({default})" + (f"  - {info.description}" if info.description else ""))
    return "\n".join(lines) + "\n"
