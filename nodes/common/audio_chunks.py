"""The audio encoders' chunking: a clip's mel frames cut into fixed-size chunks (positions restart per chunk)."""
from __future__ import annotations


def chunk_lengths(frames: int, chunk: int) -> list[int]:
    """A clip's frames cut into chunks of `chunk` frames, the last one shorter."""
    return [min(chunk, frames - start) for start in range(0, frames, chunk)]
