"""omnigraph: run Qwen3-Omni-style models as a typed, YAML-defined graph of swappable nodes.

The public names load on first use, so `import omnigraph.kernels.mel` (or the CLI's `validate`) does not
import the executors, the registry or torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {  # public name -> the module that defines it
    "GraphValidationError": ".runtime.errors", "NodeFailed": ".runtime.errors", "UserError": ".runtime.errors",
    "LocalExecutor": ".runtime.executor_local", "RunResult": ".runtime.run_result",
    "RayExecutor": ".runtime.executor_ray",
    "Node": ".runtime.node", "NodeConfig": ".runtime.node",
    "Input": ".runtime.ports", "Output": ".runtime.ports",
    "default_registry": ".runtime.registry",
    "load_graph": ".runtime.validate", "load_graph_text": ".runtime.validate",
}
__all__ = sorted(_PUBLIC)
__version__ = "0.1.0"

if TYPE_CHECKING:  # for editors and type checkers: the same names, imported eagerly
    from .runtime.errors import GraphValidationError, NodeFailed, UserError
    from .runtime.executor_local import LocalExecutor
    from .runtime.executor_ray import RayExecutor
    from .runtime.node import Node, NodeConfig
    from .runtime.ports import Input, Output
    from .runtime.registry import default_registry
    from .runtime.run_result import RunResult
    from .runtime.validate import load_graph, load_graph_text


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'omnigraph' has no attribute '{name}'")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
