"""Models built, and checkpoints checked, on the meta device without torch's Python meta kernels.

Arithmetic on meta tensors (cat, stack, a product, `normal_`, ...) runs torch's Python meta kernels, and the
first of them imports torch._dynamo: seconds of CPU at every start. So:
- `empty_model(cls, args)` builds a model with its parameters on meta and no init math; its other tensors (rope
  tables, filters: small buffers) are computed on the CPU as usual;
- `MetaShapes` (a torch function mode, active where meta tensors are combined: model builds and checkpoint
  checks) skips value writes to meta tensors and gives `cat`/`stack` of meta tensors their meta result from the
  shapes. Any other operation runs as it would without the mode.
"""
from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# in-place writes of values (random init, fills): on a meta tensor there are no values to write
_FILLS = frozenset({"normal_", "uniform_", "zero_", "fill_", "random_", "bernoulli_", "exponential_",
                    "geometric_", "log_normal_", "cauchy_", "copy_", "fill_diagonal_"})


class MetaShapes(TorchFunctionMode):
    """Within it, value writes to meta tensors do nothing and `cat`/`stack` of meta tensors are computed from
    their shapes (same result shape and dtype as torch's)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _FILLS or getattr(func, "__module__", None) == "torch.nn.init":
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        if func in _JOINS and "out" not in kwargs:
            joined = _joined(func is torch.stack, *args, **kwargs)
            if joined is not None:
                return joined
        return func(*args, **kwargs)


_JOINS = (torch.cat, torch.concat, torch.concatenate, torch.stack)


def _joined(stack: bool, tensors: Any, dim: int = 0, **kwargs: Any) -> torch.Tensor | None:
    """The meta result of cat/stack of meta tensors of compatible shapes; None for anything else (torch then
    computes it, or raises its own error)."""
    tensors = list(tensors)
    if kwargs or not tensors or not all(isinstance(t, torch.Tensor) and t.is_meta for t in tensors):
        return None
    shapes = [tuple(t.shape) for t in tensors]
    ndim = len(shapes[0]) + stack
    if ndim == 0 or not -ndim <= dim < ndim:
        return None
    dim %= ndim
    if stack:
        if len(set(shapes)) != 1:
            return None
        shape = shapes[0][:dim] + (len(tensors),) + shapes[0][dim:]
    else:
        rest = {s[:dim] + s[dim + 1:] for s in shapes}
        if len(rest) != 1 or any(len(s) != ndim for s in shapes):
            return None
        shape = shapes[0][:dim] + (sum(s[dim] for s in shapes),) + shapes[0][dim + 1:]
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return torch.empty(shape, dtype=dtype, device="meta")


def empty_model(model_cls: type, args: Any) -> nn.Module:
    """`model_cls(args)` with every parameter on the meta device and no init math run; buffers and other tensors
    its constructor computes stay on the CPU. Parameters registered by other threads meanwhile are untouched."""
    builder = threading.get_ident()

    def to_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> nn.Parameter | None:
        if param is None or param.is_meta or threading.get_ident() != builder:
            return None
        return nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    hook = nn.modules.module.register_module_parameter_registration_hook(to_meta)
    try:
        with MetaShapes():
            return model_cls(args)
    finally:
        hook.remove()
