"""Every video container PyAV can write here, with and without an audio track (odd rates, mono to 5.1): frames
sampled on the fps grid with the right colours, and the track at 16 kHz with its tone and length."""
from __future__ import annotations

import math

import numpy as np
import pytest

from media_files import dominant_freq, frame_color, write_video
from omnigraph.runtime.payloads import FilePath
from omnigraph.testing import run_node

RATE, N_FRAMES, FPS = 25, 10, 10.0  # 0.4 s at 25 fps, sampled at 10 fps: frames 0, 3, 5, 8
# extension: (muxer, video codec, pixel format, frame size, audio codec or None, audio rate, audio channels)
CONTAINERS = {
    "mp4": ("mp4", "libx264", "yuv420p", (64, 48), "aac", 44100, 1),
    "mov": ("mov", "mpeg4", "yuv420p", (64, 48), "alac", 37800, 1),
    "mkv": ("matroska", "mpeg4", "yuv420p", (64, 48), "flac", 32000, 6),
    "webm": ("webm", "libvpx", "yuv420p", (64, 48), "libopus", 48000, 2),
    "avi": ("avi", "mpeg4", "yuv420p", (64, 48), "adpcm_ms", 22050, 1),
    "flv": ("flv", "flv", "yuv420p", (64, 48), "libmp3lame", 44100, 2),
    "mpg": ("mpeg", "mpeg1video", "yuv420p", (64, 48), "mp2", 44100, 2),
    "vob": ("dvd", "mpeg2video", "yuv420p", (64, 48), "ac3", 48000, 6),
    "ts": ("mpegts", "mpeg2video", "yuv420p", (64, 48), "aac", 24000, 2),
    "ogv": ("ogv", "libvpx", "yuv420p", (64, 48), "flac", 11025, 1),  # no Theora encoder in PyAV's FFmpeg
    "wmv": ("asf", "wmv2", "yuv420p", (64, 48), "wmav2", 32000, 2),
    "3gp": ("3gp", "h263", "yuv420p", (128, 96), "libopencore_amrnb", 8000, 1),
    "nut": ("nut", "ffv1", "yuv420p", (64, 48), "pcm_s16le", 12000, 4),
    "mjpeg.avi": ("avi", "mjpeg", "yuvj420p", (64, 48), "pcm_s16le", 22050, 2),
    "y4m": ("yuv4mpegpipe", "rawvideo", "yuv420p", (64, 48), None, 0, 0),
    "ivf": ("ivf", "libvpx-vp9", "yuv420p", (64, 48), None, 0, 0),
}
CASES = [(ext, with_audio) for ext, spec in sorted(CONTAINERS.items()) for with_audio in (False, True)
         if with_audio is False or spec[4] is not None]


@pytest.mark.parametrize("ext,with_audio", CASES)
def test_video_container(tmp_path, ext, with_audio):
    fmt, codec, pix_fmt, size, audio_codec, audio_rate, channels = CONTAINERS[ext]
    path = write_video(tmp_path / f"v.{ext}", codec, N_FRAMES, RATE, audio_codec if with_audio else None,
                       size=size, audio_rate=audio_rate, audio_channels=channels, fmt=fmt, pix_fmt=pix_fmt,
                       audio_bit_rate=64000 if audio_codec == "wmav2" else None)
    video = run_node("media_decode", {"path": FilePath(str(path))}, {"fps": FPS})["video"]
    expected = [math.ceil(k * RATE / FPS - 1e-6) for k in range(math.ceil(N_FRAMES / RATE * FPS))]
    assert video.frames.shape == (len(expected), size[1], size[0], 3) and video.fps == pytest.approx(FPS)
    for k, i in enumerate(expected):
        assert np.abs(video.frames[k].numpy().reshape(-1, 3).mean(0) - frame_color(i)).max() < 12, (k, i)
    assert video.source == str(path)
    if not with_audio:
        assert video.audio is None
        return
    audio = video.audio
    assert audio.sample_rate == 16000 and audio.source == str(path)
    assert N_FRAMES / RATE - 0.03 <= audio.seconds <= 2 * N_FRAMES / RATE
    x = audio.samples.numpy()
    assert abs(dominant_freq(x[len(x) // 8: -len(x) // 8], 16000) - 440) < 15
