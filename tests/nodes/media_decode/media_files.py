"""Media files written with PyAV's own encoders for the media_decode tests: tones and coloured frames."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1"}


def sine(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5, channels: int = 2) -> np.ndarray:
    """[channels, n] float32, the same tone on every channel."""
    t = np.arange(int(seconds * rate)) / rate
    return np.tile((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), (channels, 1))


def dominant_freq(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def frame_color(i: int) -> np.ndarray:
    return np.array([(37 * i) % 256, (91 * i + 40) % 256, 200 - 8 * i], dtype=np.uint8)


def write_audio(path: Path, codec: str, samples: np.ndarray, rate: int, fmt: str | None = None) -> Path:
    """Encode planar float samples [C, n] with PyAV (codec e.g. 'flac', 'libmp3lame', 'aac', 'libopus')."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=LAYOUTS[samples.shape[0]])
        encode_audio(out, stream, samples, rate)
    return path


def encode_audio(out, stream, samples: np.ndarray, rate: int) -> None:
    fmt = stream.codec_context.format.name
    size = stream.codec_context.frame_size or 1024
    layout = LAYOUTS[samples.shape[0]]
    resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
    for start in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, start:start + size])
        if chunk.shape[1] < size and stream.codec_context.frame_size:  # fixed-size codecs: pad the last frame
            chunk = np.pad(chunk, ((0, 0), (0, size - chunk.shape[1])))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for f in resampler.resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_video(path: Path, codec: str, n_frames: int, rate: int, audio_codec: str | None = None,
                size=(64, 48), audio_rate: int = 48000, audio_channels: int = 2, fmt: str | None = None,
                pix_fmt: str = "yuv420p", audio_seconds: float | None = None,
                audio_bit_rate: int | None = None) -> Path:
    """Solid-colour frames (colour frame_color(i)) at `rate` fps, optionally with a 440 Hz track."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        audio = None
        if audio_codec is not None:
            audio = out.add_stream(audio_codec, rate=audio_rate, layout=LAYOUTS[audio_channels])
            if audio_bit_rate:
                audio.bit_rate = audio_bit_rate
        for i in range(n_frames):
            pixels = np.broadcast_to(frame_color(i), (h, w, 3)).copy()
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            encode_audio(out, audio, sine(audio_seconds or n_frames / rate, audio_rate, channels=audio_channels),
                         audio_rate)
    return path
