"""Finding graph files: shipped graphs by name, others by path."""
from __future__ import annotations

import errno
import os
import stat
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


def graph_file_problem(path: Path) -> str | None:
    """What keeps `path` from being read as a graph file, found without opening it (a FIFO would block), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symlink loop (a link that leads back to itself)"
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return "is a directory, not a graph file"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a graph file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a device or socket?), not a graph file"
    return None


def real_path(path: Path) -> Path:
    """The absolute path with links resolved as far as they go (a symlink loop does not raise)."""
    return Path(os.path.realpath(path))


def resolve_graph_ref(ref: str, base_dir: Path) -> Path:
    """A graph reference as written in `extends:` (or on the command line, with base_dir = cwd).

    A reference with a YAML suffix or a slash is a path relative to `base_dir`; anything else names a
    shipped graph. Raises UserError (saying what is there instead, or the nearest shipped name).
    """
    if looks_like_path(ref):
        return _graph_file(ref, base_dir / ref)
    path = shipped_graphs_dir() / f"{ref}.yaml"
    if path.is_file():
        return path
    hint = did_you_mean(ref, shipped_graph_names())
    raise UserError(f"no shipped graph named '{ref}'" + (f"; {hint}" if hint else ""))


def find_graph(ref: str) -> Path:
    """A graph named on the command line: an existing file first, else a shipped graph."""
    path = Path(ref).expanduser()
    if os.path.lexists(path) and (looks_like_path(ref) or ref not in shipped_graph_names()):
        return _graph_file(ref, path)
    return resolve_graph_ref(ref, Path.cwd())


def _graph_file(ref: str, path: Path) -> Path:
    problem = graph_file_problem(path)
    if problem == "not found":
        raise UserError(f"graph file '{ref}' not found (looked for {real_path(path)})")
    if problem:
        raise UserError(f"graph file '{ref}' {problem} ({real_path(path)})")
    return real_path(path)
