"""Packages that only some node kinds need, installed as extras: found without importing them, or a clear error
naming the extra to install."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from .errors import UserError


class MissingExtra(UserError):
    """A node kind's optional dependency is not installed."""

    def __init__(self, package: str, extra: str, needed_by: str):
        self.package, self.extra = package, extra
        super().__init__(f"{needed_by} needs the Python package '{package}', which is not installed; "
                         f"install it with: pip install 'omnigraph[{extra}]'")


def import_extra(module: str, extra: str, needed_by: str) -> ModuleType:
    """`import module`, or MissingExtra naming `extra` when it (or what it imports) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".")[0]
        raise MissingExtra(missing, extra, needed_by) from exc


def package_folder(package: str, extra: str, needed_by: str) -> Path:
    """The folder of an installed package, found without running its `__init__` (data-only packages, or ones
    whose import has side effects), or MissingExtra."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(package, extra, needed_by)
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str, extra: str, needed_by: str) -> Path:
    """A file shipped inside an installed package (weights, a voice), or a UserError saying what is missing."""
    path = package_folder(package, extra, needed_by) / relative
    if not path.exists():
        raise UserError(f"{needed_by} expects '{relative}' inside the package '{package}' ({path} is missing); "
                        f"reinstall it with: pip install --force-reinstall 'omnigraph[{extra}]'")
    return path
