"""An onnxruntime session on the node's device, with as many CPU threads as torch uses in this process (Ray sets
OMP_NUM_THREADS from a stage's num_cpus; torch follows it)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def onnx_session(path: Path, device: str, ort: Any, threads: int = 0) -> Any:
    """An InferenceSession for `path` (`ort`: the onnxruntime module). CUDA when `device` is cuda and this
    onnxruntime build has it, else CPU; `threads` 0 means torch's thread count."""
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)
