"""Decoding media files: audio (16 kHz mono float32), still images (RGB uint8) and video (frames + audio track).

Audio is decoded with PyAV at its own rate, averaged over channels, then resampled to 16 kHz with soxr
(librosa's "soxr_hq", as `librosa.load(path, sr=16000)` does). Still images are read with Pillow (as the Qwen
reference pipelines do); audio and video containers with PyAV.

Video frames are sampled on a time grid: the first frame at or after each k / fps seconds (k = 0, 1, ...), so
a clip of D seconds gives ceil(D * fps) frames (fewer if its own frame rate is lower). If that exceeds
max_frames, the rate is lowered to fit the whole clip.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...runtime.errors import UserError

SAMPLE_RATE = 16000
SUPPORTED = "audio: wav, flac, mp3, ogg, m4a; images: png, jpg, webp; video: mp4, mkv, webm"
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "MPO"}
# Demuxers (PyAV `container.format.name`, split at commas) we accept for audio and video files.
CONTAINERS = {"wav", "flac", "mp3", "ogg", "mov", "mp4", "m4a", "matroska", "webm", "aac", "aiff", "avi", "mpegts"}


class MediaError(UserError):
    """A media file that cannot be decoded as asked."""


def fail(path: Path, problem: str) -> MediaError:
    return MediaError(f"media file '{path}': {problem}")


def check_file(path: Path) -> None:
    if not path.exists():
        raise fail(path, "does not exist")
    if not path.is_file():
        raise fail(path, "is not a file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise fail(path, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise fail(path, "is empty (0 bytes)")


def open_image(path: Path):
    """The file as a Pillow image if it is a still-image format we read, else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if image.format not in IMAGE_FORMATS:
        image.close()
        return None
    return image


def decode_image(path: Path, image) -> np.ndarray:
    """[H, W, 3] uint8 RGB (the first frame of an animated image)."""
    from PIL import Image

    try:
        with image:
            image.load()
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise fail(path, f"is a corrupt or truncated {image.format} image ({exc})") from None


def open_container(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise fail(path, f"is not a readable media file ({_reason(exc)}); supported: {SUPPORTED}") from None
    names = set(container.format.name.split(","))
    if not names & CONTAINERS:
        container.close()
        raise fail(path, f"has an unsupported format '{container.format.name}'; supported: {SUPPORTED}")
    return container


def streams_of(container) -> tuple[object | None, object | None]:
    """(first video stream that is not cover art, first audio stream), either may be None."""
    from av.stream import Disposition

    video = next((s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)), None)
    audio = next(iter(container.streams.audio), None)
    return video, audio


def decode(container, path: Path, video_stream, audio_stream, fps: float,
           max_frames: int) -> tuple[list[np.ndarray], float, np.ndarray | None]:
    """One pass over the chosen streams: (sampled RGB frames, their rate, 16 kHz mono audio or None)."""
    import av

    streams = [s for s in (video_stream, audio_stream) if s is not None]
    frames: list[np.ndarray] = []
    rate = _frame_rate(video_stream, container, fps, max_frames) if video_stream is not None else fps
    audio = _AudioCollector(audio_stream) if audio_stream is not None else None
    native = float(video_stream.average_rate or 0) if video_stream is not None else 0.0
    audio_index = audio_stream.index if audio_stream is not None else -1
    t0, next_k, seen = None, 0, 0
    try:
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream.index == audio_index:
                    audio.add(frame)
                    continue
                t = frame.time if frame.time is not None else seen / (native or rate)
                seen += 1
                t0 = t if t0 is None else t0
                if len(frames) < max_frames and t - t0 >= next_k / rate - 1e-6:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    next_k = math.floor((t - t0) * rate + 1e-6) + 1  # skip grid points this frame covered
    except av.error.FFmpegError as exc:
        raise fail(path, f"is corrupt: decoding failed ({_reason(exc)})") from None
    finally:
        container.close()
    if native:
        rate = min(rate, native)
    return frames, rate, audio.result(path) if audio is not None else None


def _frame_rate(stream, container, fps: float, max_frames: int) -> float:
    """fps, lowered so that the whole clip fits in max_frames when its duration is known."""
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    if duration and duration * fps > max_frames:
        return max_frames / duration
    return fps


class _AudioCollector:
    """Decoded audio frames -> float32 planar at the stream's own rate -> mono -> 16 kHz."""

    def __init__(self, stream):
        import av

        self.resampler = av.AudioResampler(format="fltp")  # layout and rate stay those of the stream
        self.rate = stream.codec_context.sample_rate or stream.sample_rate
        self.chunks: list[np.ndarray] = []

    def add(self, frame) -> None:
        self._keep(self.resampler.resample(frame))

    def _keep(self, frames) -> None:
        for out in frames:
            self.rate = out.sample_rate
            self.chunks.append(out.to_ndarray().mean(axis=0))  # [C, n] -> [n]: the mean of the channels

    def result(self, path: Path) -> np.ndarray:
        self._keep(self.resampler.resample(None))
        if not sum(len(c) for c in self.chunks):
            raise fail(path, "has an audio track with no samples")
        mono = np.concatenate(self.chunks).astype(np.float32)
        if self.rate != SAMPLE_RATE:
            import librosa

            mono = librosa.resample(mono, orig_sr=self.rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
        return np.ascontiguousarray(mono, dtype=np.float32)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0] if isinstance(text, str) else str(exc)
