"""Where a node computes and in what dtype: one choice for every executor.

Device `auto` is CUDA when torch sees a GPU (and, on Ray, the stage reserved one); dtype `auto` is the
checkpoint's `torch_dtype` on CUDA and float32 on CPU.
"""
from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING, Any, Literal

from .errors import UserError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")  # what a node may compute in; `auto` resolves to one of them
DTypeSetting = Literal["auto", "float32", "bfloat16"]  # a node config's `dtype` field


class DeviceUnavailable(UserError):
    """A device was asked for that torch cannot use here."""


def choose_device(requested: str, *, reserved_gpus: float | None = None,
                  what: str = "device 'cuda' was asked for") -> str:
    """`cpu` or `cuda` for a requested `auto|cpu|cuda`.

    `reserved_gpus`: the GPUs a Ray stage reserved (None locally, where nothing is reserved); `auto` picks CUDA
    only when torch sees a GPU and, on Ray, the stage reserved some. `what` says who asked for CUDA, in errors.
    """
    if requested not in DEVICES:
        raise UserError(f"unknown device '{requested}'; choose one of {', '.join(DEVICES)}")
    if requested == "cpu" or (requested == "auto" and reserved_gpus == 0):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise DeviceUnavailable(f"{what}, but torch sees no GPU on {socket.gethostname()} (torch "
                                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use device "
                                f"cpu or auto, or run where torch sees a GPU")
    return "cpu"


def resolve_dtype(requested: str | None, device: str, checkpoint: Any = None) -> torch.dtype | None:
    """The torch dtype of a node's `dtype` setting (None for nodes without one): `auto` is the checkpoint's
    dtype on CUDA (float32 if it declares none) and float32 on CPU."""
    if requested is None:
        return None
    import torch

    if requested == "auto":
        name = checkpoint_dtype(checkpoint.config) if device == "cuda" and checkpoint is not None else None
        return getattr(torch, name or "float32")
    if requested not in DTYPES:
        raise UserError(f"unknown dtype '{requested}'; choose one of auto, {', '.join(DTYPES)}")
    return getattr(torch, requested)


def checkpoint_dtype(config: dict[str, Any]) -> str | None:
    """The dtype a Hugging Face config.json declares: top-level `torch_dtype`/`dtype`, else that of its first
    sub-config (`*_config`, in file order) that names one (multi-model releases may name it only there);
    None if it names none."""
    subs = [(f"{name}.", section) for name, section in config.items() if name.endswith("_config")]
    for where, section in [("", config), *subs]:
        if not isinstance(section, dict):
            continue
        for key in ("torch_dtype", "dtype"):
            value = section.get(key)
            if value is None:
                continue
            name = str(value).removeprefix("torch.")
            if name not in DTYPES:
                raise UserError(f"the checkpoint's config.json sets {where}{key} '{value}', which omnigraph does not "
                                f"compute in ({', '.join(DTYPES)}); set the nodes' dtype explicitly, e.g. "
                                f"--set '*.dtype=bfloat16'")
            return name
    return None


def adopt_thread_count() -> None:
    """Give the calling thread torch's intra-op thread count (`torch.set_num_threads`, or Ray's from num_cpus).
    A new thread's OpenMP team otherwise has the default size: with the process pinned to fewer cores, or sharing
    them, every op of a fresh thread spun that many threads (measured ~70x slower on one core). Call it first in
    every thread that runs torch; a no-op before torch is imported."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(torch.get_num_threads())
