"""Files a run will write, checked before anything loads: they can be created (or replaced) where they are named."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from .errors import UserError

if TYPE_CHECKING:
    from .graph import Graph


class _WrittenFile:
    """Marks a node config field as the path of a file the node writes (see `OutputFile`)."""


OutputFile = Annotated[str, _WrittenFile()]  # a config field type: `path: OutputFile = Field(...)`


def check_writable_file(path: Path, what: str) -> None:
    """Raise UserError naming `path` unless a file can be written there (missing parent folders are created)."""
    if path.is_dir():
        raise UserError(f"cannot write {what} '{path}': it is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
        if path.exists():
            path.open("ab").close()  # replacing needs the folder; appending needs the file itself
    except OSError as exc:
        raise UserError(f"cannot write {what} '{path}': {exc.strerror or exc}; choose a writable path") from None


def check_node_files(graph: Graph) -> None:
    """Check every file a node's config says it writes (fields typed `OutputFile`)."""
    for node in graph.nodes.values():
        for field, info in type(node.config).model_fields.items():
            if any(isinstance(mark, _WrittenFile) for mark in info.metadata):
                where = f"the file of node '{node.name}' ({node.kind}.{field} in {graph.file})"
                check_writable_file(Path(getattr(node.config, field)), where)
