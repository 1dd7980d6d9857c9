"""Every audio codec/container pair PyAV can write here decodes to 16 kHz mono with the tone, length and level
of the source, at odd sample rates and mono to 5.1; pairs FFmpeg itself cannot read back are refused, naming
the file."""
from __future__ import annotations

import av
import numpy as np
import pytest

from media_files import dominant_freq, sine, write_audio
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import FilePath
from omnigraph.testing import run_node

SECONDS = 0.3
# File extension -> PyAV muxer, for every container that describes its own streams (headerless raw formats
# such as .alaw or .g722 cannot be recognised from their content and are left out).
CONTAINERS = {"wav": "wav", "w64": "w64", "aiff": "aiff", "au": "au", "caf": "caf", "flac": "flac", "mp3": "mp3",
              "ogg": "ogg", "opus": "opus", "m4a": "ipod", "mp4": "mp4", "mov": "mov", "3gp": "3gp",
              "mka": "matroska", "webm": "webm", "ac3": "ac3", "eac3": "eac3", "wv": "wv", "tta": "tta",
              "aac": "adts", "wma": "asf", "avi": "avi", "flv": "flv", "mpg": "mpeg", "ts": "mpegts", "nut": "nut",
              "voc": "voc", "amr": "amr", "mp2": "mp2", "sox": "sox", "ircam": "ircam", "mmf": "mmf", "rm": "rm"}
SKIPPED_ENCODERS = {"anull", "comfortnoise"}  # produce no tone to check
# (sample rate, channels): each codec tries one of these (a different one for each codec), then the fallbacks,
# until its encoder takes one.
FORMATS = [(22050, 1), (44100, 2), (48000, 6), (8000, 1), (11025, 1), (32000, 2), (37800, 3), (12000, 4),
           (16000, 1), (24000, 5), (44100, 1)]
FALLBACKS = [(48000, 2), (44100, 2), (8000, 1)]
# Pairs FFmpeg's muxers write but FFmpeg itself does not read back: refused with FFmpeg's reason, never decoded
# wrongly. mpegts has stream types for few audio codecs; the rest it stores as data streams.
TS_AUDIO = {"aac", "ac3", "ac3_fixed", "eac3", "mp2", "mp2fixed", "libmp3lame", "mp3", "libopus", "opus"}
UNREADABLE = {("nut", "adpcm_ima_wav"), ("nut", "g726"),  # nut keeps no block size for these
              ("mka", "tta")}
MISREAD = {("flv", "pcm_alaw"), ("flv", "pcm_mulaw"), ("flv", "pcm_s16be"), ("flv", "pcm_u8")}  # flv's muxer
# labels these with rates or sample formats flv cannot hold; FFmpeg reads them back as other audio


def audio_encoders() -> list[str]:
    names = []
    for name in sorted(av.codecs_available):
        try:
            codec = av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if codec.type == "audio" and name not in SKIPPED_ENCODERS and not codec.experimental:
            names.append(name)
    return names


def try_write(path, codec: str, fmt: str, start: int):
    for rate, channels in [FORMATS[start % len(FORMATS)], *FALLBACKS]:
        try:
            write_audio(path, codec, sine(SECONDS, rate, channels=channels), rate, fmt)
            return rate, channels
        except (av.error.FFmpegError, ValueError, TypeError, OSError):
            path.unlink(missing_ok=True)
    return None


def refused(path) -> str | None:
    """The error message media_decode gives, or None when it decodes the file."""
    try:
        run_node("media_decode", {"path": FilePath(str(path))}, {})
    except NodeFailed as exc:
        assert isinstance(exc.error, UserError) and str(path) in str(exc.error), exc.error
        return str(exc.error)
    return None


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_every_codec_this_container_takes(tmp_path, ext):
    av.logging.set_level(av.logging.PANIC)  # the muxers refusing codecs are expected; keep the log quiet
    written, problems = [], []
    for i, codec in enumerate(audio_encoders()):
        path = tmp_path / f"{codec}.{ext}"
        form = try_write(path, codec, CONTAINERS[ext], i)
        if form is None or (ext, codec) in MISREAD:
            continue
        written.append(codec)
        if (ext, codec) in UNREADABLE or (ext == "ts" and codec not in TS_AUDIO):
            if refused(path) is None:
                problems.append(f"{codec} {form}: decoded a file FFmpeg does not read back")
            continue
        try:
            wave = run_node("media_decode", {"path": FilePath(str(path))}, {})["audio"]
        except NodeFailed as exc:
            problems.append(f"{codec} {form}: {exc.error}")
            continue
        problems += [f"{codec} {form}: {p}" for p in check_tone(wave, codec, form[0])]
    assert written, f"PyAV wrote no audio codec into .{ext}"
    assert not problems, "\n".join(problems)


def check_tone(wave, codec: str, rate: int) -> list[str]:
    x = wave.samples.numpy()
    seconds = len(x) / 16000
    problems = []
    if wave.sample_rate != 16000 or x.ndim != 1:
        problems.append(f"rate {wave.sample_rate}, shape {x.shape}")
    if not SECONDS - 0.03 <= seconds <= 2 * SECONDS:  # codecs add priming and pad their last frame
        problems.append(f"{seconds:.3f} s long")
    mid = x[len(x) // 8: -len(x) // 8]
    if len(mid) < 800:
        return problems + ["too short to check"]
    if abs(dominant_freq(mid, 16000) - 440) > 15:
        problems.append(f"tone at {dominant_freq(mid, 16000):.0f} Hz")
    if not 0.1 < np.sqrt(np.mean(mid ** 2)) < 0.5:
        problems.append(f"rms {np.sqrt(np.mean(mid ** 2)):.3f}")
    return problems
