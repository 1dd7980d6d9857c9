"""Finding graph files: shipped graphs by name, others by path."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import UserError, did_you_mean

GRAPH_SUFFIXES = (".yaml", ".yml")


def shipped_graphs_dir() -> Path:
    return Path(str(resources.files("omnigraph.graphs")))


def shipped_graph_names() -> list[str]:
    return sorted(p.stem for p in shipped_graphs_dir().glob("*.yaml"))


def looks_like_path(ref: str) -> bool:
    return ref.endswith(GRAPH_SUFFIXES) or "/" in ref or "\\" in ref


def resolve_graph_ref(ref: str, base_dir: Path) -> Path:
    """A graph reference as written in `extends:` (or on the command line, with base_dir = cwd).

    A reference with a YAML suffix or a slash is a path relative to `base_dir`; anything else names a
    shipped graph. Raises UserError (with the nearest shipped name) when nothing is there.
    """
    if looks_like_path(ref):
        path = (base_dir / ref).resolve()
        if path.is_file():
            return path
        raise UserError(f"graph file '{ref}' not found (looked for {path})")
    path = shipped_graphs_dir() / f"{ref}.yaml"
    if path.is_file():
        return path
    hint = did_you_mean(ref, shipped_graph_names())
    raise UserError(f"no shipped graph named '{ref}'" + (f"; {hint}" if hint else ""))


def find_graph(ref: str) -> Path:
    """A graph named on the command line: an existing file first, else a shipped graph."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path.resolve()
    return resolve_graph_ref(ref, Path.cwd())
