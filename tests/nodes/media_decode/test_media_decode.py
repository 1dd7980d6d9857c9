"""media_decode: audio formats to 16 kHz mono, exact image pixels, video frame sampling with the audio track,
and clear errors (naming the file) for bad inputs. Every media file is generated here with PyAV or Pillow."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image as PILImage

from media_files import dominant_freq, frame_color, sine, write_audio, write_video
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import FilePath
from omnigraph.testing import run_node

SR_IN = 44100


def decode(path: Path, **config):
    return run_node("media_decode", {"path": FilePath(str(path))}, config)


# ---------------------------------------------------------------------------------------------------- audio
@pytest.mark.parametrize("name,codec,fmt", [("a.wav", "pcm_s16le", None), ("a.flac", "flac", None),
                                            ("a.mp3", "libmp3lame", None), ("a.ogg", "libopus", None),
                                            ("a.m4a", "aac", "ipod")])
def test_audio_formats_give_16k_mono_close_to_the_source(tmp_path, name, codec, fmt):
    rate = 48000 if codec == "libopus" else SR_IN
    path = write_audio(tmp_path / name, codec, sine(1.0, rate), rate, fmt)
    wave = decode(path)["audio"]
    x = wave.samples.numpy()
    assert wave.sample_rate == 16000 and wave.samples.dtype == torch.float32 and wave.samples.ndim == 1
    assert abs(len(x) - 16000) < 16000 * 0.08  # codec priming/padding adds at most a few frames
    mid = x[2000:14000]
    assert abs(dominant_freq(mid, 16000) - 440) < 3
    assert np.sqrt(np.mean(mid ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_wav_matches_librosa_load(tmp_path):
    """What `librosa.load(path, sr=16000)` gives (the channel mean, then soxr "HQ" in one call), without the
    seconds librosa's import costs."""
    import soxr

    rng = np.random.default_rng(0)
    stereo = (0.3 * rng.standard_normal((2, SR_IN // 2))).clip(-1, 1).astype(np.float32)
    path = tmp_path / "noise.wav"
    soundfile.write(path, stereo.T, SR_IN, subtype="FLOAT")
    ours = decode(path)["audio"].samples.numpy()
    ref = soxr.resample(stereo.mean(axis=0), SR_IN, 16000, quality="HQ")
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_16k_mono_pcm_is_passed_through_exactly(tmp_path):
    rng = np.random.default_rng(1)
    pcm = rng.integers(-32768, 32767, 8000, dtype=np.int16)
    path = tmp_path / "pcm.wav"
    soundfile.write(path, pcm, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(decode(path)["audio"].samples.numpy(), pcm.astype(np.float32) / 32768)


# ---------------------------------------------------------------------------------------------------- images
def test_png_pixels_are_exact_and_alpha_is_dropped(tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    out = decode(tmp_path / "x.png")
    assert set(out) == {"image"}
    assert out["image"].pixels.dtype == torch.uint8
    np.testing.assert_array_equal(out["image"].pixels.numpy(), rgba[..., :3])


def test_jpeg_and_webp(tmp_path):
    rng = np.random.default_rng(3)
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), 8, 0), 8, 1)
    PILImage.fromarray(smooth).save(tmp_path / "x.jpg", quality=95)
    PILImage.fromarray(smooth).save(tmp_path / "x.webp", lossless=True)
    jpg = decode(tmp_path / "x.jpg")["image"].pixels.numpy()
    np.testing.assert_array_equal(jpg, np.array(PILImage.open(tmp_path / "x.jpg").convert("RGB")))
    assert np.abs(jpg.astype(int) - smooth).mean() < 12  # lossy, chroma subsampled
    np.testing.assert_array_equal(decode(tmp_path / "x.webp")["image"].pixels.numpy(), smooth)


def test_grayscale_png_becomes_rgb(tmp_path):
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    PILImage.fromarray(gray, "L").save(tmp_path / "g.png")
    pixels = decode(tmp_path / "g.png", expect="image")["image"].pixels.numpy()
    np.testing.assert_array_equal(pixels, np.repeat(gray[..., None], 3, axis=2))


# ---------------------------------------------------------------------------------------------------- video
@pytest.mark.parametrize("name,codec,audio_codec", [("v.mp4", "libx264", "aac"), ("v.mkv", "mpeg4", "flac"),
                                                    ("v.webm", "libvpx", "libopus")])
def test_video_frames_follow_fps_and_audio_track_is_16k(tmp_path, name, codec, audio_codec):
    path = write_video(tmp_path / name, codec, n_frames=20, rate=10, audio_codec=audio_codec)
    video = decode(path)["video"]  # 2.0 s at 10 fps, sampled at 2 fps: frames 0, 5, 10, 15
    assert video.frames.shape == (4, 48, 64, 3) and video.frames.dtype == torch.uint8
    assert video.fps == pytest.approx(2.0)
    for k, i in enumerate((0, 5, 10, 15)):
        assert np.abs(video.frames[k].numpy().reshape(-1, 3).mean(0) - frame_color(i)).max() < 8, k
    assert video.audio is not None and video.audio.sample_rate == 16000
    assert video.audio.seconds == pytest.approx(2.0, abs=0.1)
    assert abs(dominant_freq(video.audio.samples.numpy()[4000:28000], 16000) - 440) < 3


def test_video_fps_and_max_frames(tmp_path):
    path = write_video(tmp_path / "v.mp4", "libx264", n_frames=20, rate=10)
    assert decode(path, fps=5.0)["video"].frames.shape[0] == 10
    assert decode(path, fps=50.0)["video"].frames.shape[0] == 20  # never more than the file's own frames
    capped = decode(path, fps=10.0, max_frames=5)["video"]  # 2 s in 5 frames: the rate drops to 2.5 fps
    assert capped.frames.shape[0] == 5 and capped.fps == pytest.approx(2.5)
    silent = decode(path)["video"]
    assert silent.audio is None


def test_expect_audio_takes_the_track_of_a_video(tmp_path):
    path = write_video(tmp_path / "v.mp4", "libx264", n_frames=10, rate=10, audio_codec="aac")
    out = decode(path, expect="audio")
    assert set(out) == {"audio"} and out["audio"].seconds == pytest.approx(1.0, abs=0.1)


# ---------------------------------------------------------------------------------------------------- errors
def failure(path: Path, **config) -> str:
    with pytest.raises(NodeFailed) as info:
        decode(path, **config)
    assert isinstance(info.value.error, UserError), info.value.error
    message = str(info.value.error)
    assert str(path) in message
    return message


def test_bad_inputs_fail_with_the_file_and_the_rule(tmp_path):
    (tmp_path / "notes.txt").write_text("just some text\n")
    assert "not an audio, video or image file" in failure(tmp_path / "notes.txt")
    (tmp_path / "notes.nfo").write_text("just some text\n")  # FFmpeg would show it as ANSI-art video
    assert "is a text file" in failure(tmp_path / "notes.nfo")
    (tmp_path / "empty.wav").write_bytes(b"")
    assert "empty (0 bytes)" in failure(tmp_path / "empty.wav")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(4).bytes(4096))
    assert "not an audio, video or image file that FFmpeg or Pillow can read (FFmpeg: Invalid data" in failure(
        tmp_path / "garbage.mp4")
    PILImage.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    assert "corrupt" in failure(tmp_path / "cut.png")
    assert "expects audio" in failure(tmp_path / "full.png", expect="audio")
    write_audio(tmp_path / "a.wav", "pcm_s16le", sine(0.2, 16000, channels=1), 16000)
    assert "audio only" in failure(tmp_path / "a.wav", expect="video")
    assert "not a still image" in failure(tmp_path / "a.wav", expect="image")
    silent = write_video(tmp_path / "silent.mp4", "libx264", n_frames=4, rate=10)
    assert "no audio track" in failure(silent, expect="audio")
    assert "does not exist" in failure(tmp_path / "missing.wav")


def test_cli_exits_2_on_a_bad_file(tmp_path):
    graph = tmp_path / "decode.yaml"
    graph.write_text("name: decode\ninputs:\n  path: {to: [d.path]}\nnodes:\n  d: {kind: media_decode}\n"
                     "outputs:\n  audio: d.audio\n")
    (tmp_path / "notes.txt").write_text("not media")
    result = subprocess.run([sys.executable, "-m", "omnigraph", "run", str(graph), "-i",
                             f"path={tmp_path / 'notes.txt'}", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "notes.txt" in result.stderr and "not an audio, video or image file" in result.stderr


@pytest.mark.parametrize("name", ["x.bmp", "x.gif", "x.tiff", "x.ppm", "x.tga"])
def test_other_pillow_formats_and_the_first_frame_of_an_animation(tmp_path, name):
    frames = [np.broadcast_to(frame_color(i), (12, 20, 3)).copy() for i in range(3)]
    images = [PILImage.fromarray(f) for f in frames]
    images[0].save(tmp_path / name, save_all=name.endswith((".gif", ".tiff")), append_images=images[1:])
    image = decode(tmp_path / name)["image"]
    assert image.source == str(tmp_path / name)
    assert np.abs(image.pixels.numpy().astype(int) - frames[0]).max() <= 4  # gif's palette rounds a little


def test_an_image_only_ffmpeg_reads_is_an_image(tmp_path):
    import av

    pixels = np.broadcast_to(frame_color(2), (16, 24, 3)).copy()
    with av.open(str(tmp_path / "x.dpx"), "w", format="image2") as out:  # DPX: Pillow has no reader
        stream = out.add_stream("dpx", rate=1)
        stream.width, stream.height, stream.pix_fmt = 24, 16, "rgb24"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")), *stream.encode(None)]:
            out.mux(packet)
    np.testing.assert_array_equal(decode(tmp_path / "x.dpx")["image"].pixels.numpy(), pixels)
    assert "still image (dpx_pipe), but this node expects video" in failure(tmp_path / "x.dpx", expect="video")


def test_a_track_that_changes_rate_and_layout_midway(tmp_path):
    first = write_audio(tmp_path / "a.mp3", "libmp3lame", sine(0.5, 44100, channels=2), 44100).read_bytes()
    second = write_audio(tmp_path / "b.mp3", "libmp3lame", sine(0.5, 22050, channels=1), 22050).read_bytes()
    (tmp_path / "joined.mp3").write_bytes(first + second)  # as concatenated recordings are
    wave = decode(tmp_path / "joined.mp3")["audio"]
    assert wave.seconds == pytest.approx(1.0, abs=0.15)
    x = wave.samples.numpy()
    for part in (x[1000:7000], x[len(x) - 7000:len(x) - 1000]):
        assert abs(dominant_freq(part, 16000) - 440) < 10


def test_an_image_over_pillows_bomb_limit_is_refused(tmp_path, monkeypatch):
    PILImage.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is over twice the limit
    assert "too large an image to decode safely" in failure(tmp_path / "big.png")


def test_a_tag_that_is_not_valid_utf8_does_not_stop_decoding(tmp_path):
    body = b"\x03" + b"Caf\xe9 \xff"  # a title said to be UTF-8 that is Latin-1, as old taggers wrote
    frame = b"TIT2" + struct.pack(">I", len(body)) + b"\x00\x00" + body
    size = bytes((len(frame) >> shift) & 0x7F for shift in (21, 14, 7, 0))  # ID3v2 "syncsafe" size
    mp3 = write_audio(tmp_path / "a.mp3", "libmp3lame", sine(0.5, SR_IN), SR_IN).read_bytes()
    (tmp_path / "tagged.mp3").write_bytes(b"ID3\x03\x00\x00" + size + frame + mp3)
    assert decode(tmp_path / "tagged.mp3")["audio"].seconds == pytest.approx(0.5, abs=0.08)


class StreamAppearsMidFile:
    """A container whose demuxing ends as PyAV's does when a stream appeared mid-file (FLV, MPEG-TS): every
    packet is read, then its final flush fails with IndexError, so the decoders' buffered frames are not flushed."""

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name):
        return getattr(self._container, name)

    def demux(self, *streams):
        yield from (packet for packet in self._container.demux(*streams) if packet.size)
        raise IndexError("list index out of range")


def test_a_stream_appearing_mid_file_still_gives_every_frame(tmp_path):
    import av

    from omnigraph.nodes.media_decode import decode as d

    path = write_video(tmp_path / "v.mp4", "libx264", n_frames=20, rate=10, audio_codec="aac")
    container = av.open(str(path))
    video, audio = d.streams_of(container)
    frames, _, samples = d.decode(StreamAppearsMidFile(container), path, video, audio, 2.0, 256, 3600.0)
    whole = decode(path)["video"]  # x264 holds frames back until the flush
    np.testing.assert_array_equal(np.stack(frames), whole.frames.numpy())
    np.testing.assert_array_equal(samples, whole.audio.samples.numpy())


def test_an_animated_gif_asked_for_as_video_gives_its_frames(tmp_path):
    images = [PILImage.fromarray(np.broadcast_to(frame_color(i), (12, 20, 3)).copy()) for i in range(6)]
    images[0].save(tmp_path / "a.gif", save_all=True, append_images=images[1:], duration=250)  # 4 fps, 1.5 s
    video = decode(tmp_path / "a.gif", expect="video")["video"]
    assert video.frames.shape == (3, 12, 20, 3) and video.fps == pytest.approx(2.0)
    for k, i in enumerate((0, 2, 4)):
        assert np.abs(video.frames[k].numpy().reshape(-1, 3).mean(0) - frame_color(i)).max() < 12, k
    assert set(decode(tmp_path / "a.gif")) == {"image"}  # auto: the first frame, as a still image
