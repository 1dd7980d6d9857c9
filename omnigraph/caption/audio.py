"""A file's audio, decoded once with media_decode (16 kHz mono float32; a video's audio track), and a window of
it written as a WAV file, which is how a window becomes the graph's `audio` input.

Why a WAV per window: the graph given with --graph stays the unit of work, untouched, and takes a file as its
`audio` input, as `omnigraph run` does; a 16 kHz float32 WAV decodes back to exactly the samples written (no
resampling, no conversion), so a window's caption is the one `omnigraph run GRAPH --input audio=window.wav`
gives. Writing and re-reading 30 s (1.9 MB) costs about a millisecond, against seconds of model time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.errors import UserError
from ..runtime.payloads import FilePath

DECODE_LIMIT = 86_400.0  # seconds: media_decode's largest max_seconds; longer files are error records


class AudioError(UserError):
    """Why a file's audio cannot be captioned (the record's `error`)."""


def decode_audio(path: str) -> np.ndarray:
    """[N] float32 at 16 kHz; AudioError naming the reason (missing, empty, not media, corrupt, no audio track,
    no samples, too long)."""
    from ..nodes.media_decode.node import MediaDecode

    node = MediaDecode(MediaDecode.Config(expect="audio", max_seconds=DECODE_LIMIT))
    try:
        samples = node.process(FilePath(path))["audio"].samples.numpy()
    except UserError as exc:
        raise AudioError(str(exc)) from None
    except (OSError, MemoryError) as exc:
        raise AudioError(f"media file '{path}': cannot be read ({exc})") from None
    return samples


def write_window(samples: np.ndarray, rate: int, path: Path) -> Path:
    """`samples` as a float32 WAV at `rate`."""
    import soundfile

    soundfile.write(path, samples, rate, subtype="FLOAT")
    return path
