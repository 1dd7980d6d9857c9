"""Audio and video containers with PyAV: every format FFmpeg demuxes and decodes, detected from the content.

Audio is averaged over channels and resampled to 16 kHz as it is decoded (audio_track.py). Video frames are
sampled on a time grid: the first frame at or after each k / fps seconds (k = 0, 1, ...), so a clip of D seconds
gives ceil(D * fps) frames (fewer if its own frame rate is lower). If that exceeds max_frames, the rate is
lowered to fit the whole clip.

Length is bounded twice: by the duration the container declares, before anything is decoded, and by what has
been decoded, so a file whose header lies or says nothing still stops as soon as it passes the limit.
A few undecodable packets are skipped (as the ffmpeg tool does); a file none of whose packets decode fails with
FFmpeg's reason.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .audio_track import AudioTrack
from .errors import fail

TEXT_DEMUXERS = {"tty"}  # FFmpeg shows a text file as ANSI-art video; nobody means that as media
BAD_PACKETS_BEFORE_GIVING_UP = 32  # undecodable packets tolerated before anything decodes
HEADER_DESCRIBED = {"wav"}  # demuxers whose header gives every stream's codec, rate, channels and length
HEADER_ONLY = {"probesize": "32", "analyzeduration": "0"}  # FFmpeg's least stream analysis


def open_container(path: Path):
    """The file opened by FFmpeg: a WAV file from its header alone (`header_described`), any other file with
    FFmpeg's full stream analysis."""
    import av

    container = header_described(path)
    if container is None:
        try:
            container = av.open(str(path), metadata_errors="replace")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise fail(path, f"is not an audio, video or image file that FFmpeg or Pillow can read "
                             f"(FFmpeg: {_reason(exc)})") from None
    if container.format.name in TEXT_DEMUXERS:
        container.close()
        raise fail(path, "is a text file, not audio, video or an image")
    return container


def header_described(path: Path):
    """The file opened without FFmpeg's stream analysis when it is WAV and its header describes every stream
    (codec, rate, channels); else None. The analysis reads and decodes the start of a file to learn what its
    header leaves out; a WAV header leaves out nothing, and analysing costs about half of decoding a 2 s clip."""
    import av

    try:
        container = av.open(str(path), metadata_errors="replace", container_options=HEADER_ONLY)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return None
    streams = list(container.streams)
    if container.format.name in HEADER_DESCRIBED and streams and all(
            s.type == "audio" and s.codec_context is not None and s.codec_context.sample_rate > 0
            and s.codec_context.channels > 0 for s in streams):
        return container
    container.close()
    return None


def is_still_image(container) -> bool:
    """An image FFmpeg reads through its image demuxers (formats Pillow does not decode, e.g. EXR, DPX)."""
    return any(n == "image2" or n.endswith("_pipe") for n in container.format.name.split(","))


def streams_of(container) -> tuple[object | None, object | None]:
    """(first decodable video stream that is not cover art, first decodable audio stream), either may be None."""
    from av.stream import Disposition

    video = next((s for s in container.streams.video if s.codec_context is not None
                  and not (s.disposition & Disposition.attached_pic)), None)
    audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
    return video, audio


def describe_streams(container) -> str:
    """'data, audio (no decoder)': what the file holds, for a message saying nothing in it decodes."""
    kinds = [s.type + ("" if s.codec_context is not None or s.type not in ("audio", "video") else " (no decoder)")
             for s in container.streams]
    return ", ".join(kinds) or "no streams at all"


def declared_seconds(container, streams) -> float | None:
    """The longest duration the chosen streams (or else the container) declare, None when none does."""
    known = [float(s.duration * s.time_base) for s in streams if s.duration is not None and s.time_base]
    if known:
        return max(known)
    return container.duration / 1_000_000 if container.duration is not None else None  # AV_TIME_BASE units


def check_declared_length(path: Path, container, streams, max_seconds: float) -> None:
    seconds = declared_seconds(container, streams)
    if seconds is not None and seconds > max_seconds:
        container.close()
        raise fail(path, f"is {_clock(seconds)} long (its header says so), over media_decode's limit of "
                         f"{max_seconds:g} s; cut it into shorter files or raise media_decode's max_seconds")


def first_frame(container, path: Path, stream) -> np.ndarray:
    """[H, W, 3] uint8 RGB: the first picture of the stream."""
    frames, _, _ = decode(container, path, stream, None, fps=1.0, max_frames=1, max_seconds=math.inf,
                          first_only=True)
    if not frames:
        raise fail(path, "is an image that FFmpeg could not decode")
    return frames[0]


def decode(container, path: Path, video_stream, audio_stream, fps: float, max_frames: int, max_seconds: float,
           first_only: bool = False) -> tuple[list[np.ndarray], float, np.ndarray | None]:
    """One pass over the chosen streams: (sampled RGB frames, their rate, 16 kHz mono audio or None)."""
    import av

    streams = [s for s in (video_stream, audio_stream) if s is not None]
    frames: list[np.ndarray] = []
    rate = _frame_rate(video_stream, container, fps, max_frames) if video_stream is not None else fps
    audio = AudioTrack() if audio_stream is not None else None
    native = float(video_stream.average_rate or 0) if video_stream is not None else 0.0
    audio_index = audio_stream.index if audio_stream is not None else -1
    t0, next_k, seen, bad, reason = None, 0, 0, 0, None
    try:
        for packet in _packets(container, streams):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                bad, reason = bad + 1, reason or _reason(exc)
                if bad >= BAD_PACKETS_BEFORE_GIVING_UP and not seen and not (audio and audio.seconds):
                    break
                continue
            for frame in decoded:
                if packet.stream.index == audio_index:
                    _add_audio(audio, frame, path)
                    elapsed = audio.seconds
                else:
                    t = frame.time if frame.time is not None else seen / (native or rate)
                    seen += 1
                    t0 = t if t0 is None else t0
                    elapsed = t - t0
                    if len(frames) < max_frames and elapsed >= next_k / rate - 1e-6:
                        frames.append(frame.to_ndarray(format="rgb24"))
                        next_k = math.floor(elapsed * rate + 1e-6) + 1  # skip grid points this frame covered
                    if first_only:
                        return frames, rate, None
                if elapsed > max_seconds:
                    raise fail(path, f"is longer than media_decode's limit of {max_seconds:g} s (decoding "
                                     f"stopped there; its header gave {_declared(container, streams)}); cut it "
                                     "into shorter files or raise media_decode's max_seconds")
    except av.error.FFmpegError as exc:
        raise fail(path, f"is corrupt: FFmpeg stopped reading it ({_reason(exc)})") from None
    finally:
        container.close()
    samples = audio.samples() if audio is not None else None
    if reason and not frames and (samples is None or not len(samples)):
        raise fail(path, f"is corrupt: FFmpeg could not decode it ({reason})")
    if samples is not None and not len(samples):
        raise fail(path, "has an audio track with no samples")
    if native:
        rate = min(rate, native)
    return frames, rate, samples


def _packets(container, streams):
    """container.demux(*streams), ending cleanly when a stream appeared mid-file (FLV and MPEG-TS add streams as
    they come): PyAV's final flush then fails with IndexError, so the chosen streams' decoders are flushed here."""
    try:
        yield from container.demux(*streams)
    except IndexError:
        yield from (_Flush(s) for s in streams)


class _Flush:
    """Stands for PyAV's empty end-of-stream packet: decoding it returns the frames the decoder still holds."""

    def __init__(self, stream):
        self.stream = stream

    def decode(self):
        return self.stream.decode(None)


def _add_audio(audio: AudioTrack, frame, path: Path) -> None:
    try:
        audio.add(frame)
    except ValueError as exc:
        raise fail(path, f"has audio that FFmpeg could not convert to samples ({exc})") from None


def _frame_rate(stream, container, fps: float, max_frames: int) -> float:
    """fps, lowered so that the whole clip fits in max_frames when its duration is known."""
    duration = declared_seconds(container, [stream])
    if duration and duration * fps > max_frames:
        return max_frames / duration
    return fps


def _declared(container, streams) -> str:
    seconds = declared_seconds(container, streams)
    return "no length" if seconds is None else f"{seconds:.2f} s"


def _clock(seconds: float) -> str:
    """1:02:03 style, with the seconds too: '18:00:00 (64800 s)'."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d} ({seconds:.0f} s)"


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0] if isinstance(text, str) else str(exc)
