"""The header of a .safetensors file (8-byte little-endian length, then JSON): every tensor's dtype, shape and
byte range, read without touching tensor data. Truncated or malformed files are user errors naming the file."""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError

FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # safetensors' name: F32, BF16, I64, ...
    shape: tuple[int, ...]


def read_header(path: Path) -> dict[str, TensorInfo]:
    """Tensor name -> dtype and shape, checking that the file holds every byte its header describes."""
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            head = f.read(8)
            (length,) = struct.unpack("<Q", head) if len(head) == 8 else (-1,)
            if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
                raise _bad(path, "no valid safetensors header (not a .safetensors file, or cut short)")
            header = json.loads(f.read(length))
    except OSError as exc:
        raise _bad(path, f"unreadable: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"its header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, "its header is not a JSON object")
    tensors, end = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (_, stop) = entry["dtype"], tuple(int(n) for n in entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise _bad(path, f"the header entry of '{name}' lacks a dtype, shape or data_offsets") from None
        tensors[name] = TensorInfo(str(dtype), shape)
        end = max(end, int(stop))
    if 8 + length + end > size:
        raise _bad(path, f"it is truncated: {size} bytes, its header describes {8 + length + end} "
                         f"(download it again)")
    return tensors


def _bad(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"'{path}' is not a readable safetensors file: {why}")
