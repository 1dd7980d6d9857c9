"""A generated collection for the caption tests: clips of 0.5 to 95 s in several formats, videos with and without
an audio track, and bad files (corrupt, empty, not media, a zero-length audio track), with what each should give."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from media_files import sine, write_audio, write_video


@dataclass(frozen=True)
class Expected:
    """`windows` for a good file (with window_seconds 30), else the words its error must contain."""

    windows: int = 0
    error: str | None = None


def speechlike(seconds: float, rate: int, seed: int, pause_at: float | None = None) -> np.ndarray:
    """[n] float32 noise bursts at a syllable rhythm (never silent for long), with an optional 0.6 s pause."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = (0.2 * rng.standard_normal(n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    if pause_at is not None:
        x[int(pause_at * rate):int((pause_at + 0.6) * rate)] = 0
    return x


def window_count(seconds: float) -> int:
    return math.ceil(seconds / 30 - 1e-9)


def make_collection(folder: Path, n_good: int = 30) -> dict[Path, Expected]:
    """Write the collection under `folder` (some in a subfolder); {path: what it should give}."""
    sub = folder / "sub" / "deeper"
    sub.mkdir(parents=True, exist_ok=True)
    expected: dict[Path, Expected] = {}
    lengths = [95.0, 61.0, 31.0] + [0.5 + (i * 0.37) % 6 for i in range(n_good - 3)]
    for i, seconds in enumerate(lengths):
        where = sub if i % 3 == 0 else folder
        if i % 5 == 1:
            path = where / f"clip{i:03d}.flac"
            soundfile.write(path, speechlike(seconds, 22050, i), 22050)
        elif i % 5 == 2:
            path = write_audio(where / f"clip{i:03d}.mp3", "libmp3lame", sine(seconds, 44100), 44100)
        elif i % 5 == 3:
            path = where / f"clip{i:03d}"  # no extension: found by its content
            soundfile.write(path, speechlike(seconds, 16000, i), 16000, format="WAV")
        else:
            path = where / f"clip{i:03d}.wav"
            soundfile.write(path, speechlike(seconds, 16000, i), 16000, subtype="FLOAT")
        expected[path] = Expected(windows=window_count(seconds))
    for i in range(2):
        path = write_video(folder / f"video{i}.mp4", "mpeg4", 8, 4, audio_codec="aac", audio_seconds=2.0)
        expected[path] = Expected(windows=1)
    expected[write_video(folder / "silent_film.mp4", "mpeg4", 8, 4)] = Expected(error="no audio track")
    (folder / "empty.wav").write_bytes(b"")
    expected[folder / "empty.wav"] = Expected(error="empty")
    (folder / "corrupt.mp3").write_bytes(np.random.default_rng(1).bytes(4000))
    expected[folder / "corrupt.mp3"] = Expected(error="is not an audio, video or image file")
    (folder / "notes.wav").write_text("these are my notes, not audio\n" * 20)
    expected[folder / "notes.wav"] = Expected(error="is not an audio, video or image file")
    soundfile.write(folder / "zero.wav", np.zeros(0, np.float32), 16000)
    expected[folder / "zero.wav"] = Expected(error="no samples")
    (folder / "readme.txt").write_text("not media: left out of a folder listing\n")
    (folder / ".hidden.wav").write_bytes(b"left out: hidden")
    return expected
