"""Human-readable descriptions of node kinds (for `omnigraph nodes`)."""
from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic_core import PydanticUndefined

from .node import Node


def describe_kind(cls: type[Node]) -> str:
    doc = inspect.getdoc(inspect.getmodule(cls)) or inspect.getdoc(cls) or ""
    summary = doc.splitlines()[0] if doc else ""
    if summary.startswith(f"{cls.kind}:"):  # module docstrings start 'kind: ...'; don't say the kind twice
        summary = summary[len(cls.kind) + 1:].strip()
    lines = [f"{cls.kind}: {summary}".rstrip()]
    for title, ports in (("inputs", cls.inputs), ("outputs", cls.outputs)):
        lines.append(f"  {title}:" + ("" if ports else " none"))
        for port in ports:
            lines.append(f"    {port.name}: {port.describe()}" + (f"  - {port.doc}" if port.doc else ""))
    fields = cls.Config.model_fields
    lines.append("  config:" + ("" if fields else " none"))
    for name, info in fields.items():
        annotation = _type_name(info.annotation)
        default = "required" if info.default is PydanticUndefined and info.default_factory is None else (
            f"default {info.default!r}" if info.default_factory is None else "default computed")
        lines.append(f"    {name}: {annotation} ({default})" + (f"  - {info.description}" if info.description else ""))
    return "\n".join(lines) + "\n"


def _type_name(annotation: Any) -> str:
    """`float`, `Literal['words', 'chars']`, `list[str]`, `str | None`: enough to write a valid value."""
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")
