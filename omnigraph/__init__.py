"""omnigraph: run Qwen3-Omni-style models as a typed, YAML-defined graph of swappable nodes."""
from omnigraph.runtime.errors import GraphValidationError, NodeFailed, UserError
from omnigraph.runtime.executor_local import LocalExecutor, RunResult
from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.ports import Input, Output
from omnigraph.runtime.registry import default_registry
from omnigraph.runtime.validate import load_graph, load_graph_text

__all__ = [
    "GraphValidationError", "Input", "LocalExecutor", "Node", "NodeConfig", "NodeFailed", "Output", "RayExecutor",
    "RunResult", "UserError", "default_registry", "load_graph", "load_graph_text",
]
__version__ = "0.1.0"


def __getattr__(name: str):  # Ray is imported only when its executor is asked for
    if name == "RayExecutor":
        from omnigraph.runtime.executor_ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module 'omnigraph' has no attribute '{name}'")
