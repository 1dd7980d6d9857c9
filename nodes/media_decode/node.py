"""media_decode: decode a media file into exactly one of its outputs; the kind is found from the content.

Still images are whatever Pillow decodes (png, jpg, webp, bmp, gif's first frame, tiff, ...); audio and video
are whatever FFmpeg (through PyAV) demuxes and decodes. `expect: auto` picks the kind from the file: a still
image -> image; a container with a video stream (cover art does not count) -> video; audio streams only ->
audio. `expect: audio` also takes the audio track of a video file; `expect: video` takes every frame of an
animated GIF, WebP or PNG. Files FFmpeg cannot read, files longer than `max_seconds`, and files of another
kind than expected fail with a UserError naming the file and the reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import FilePath, Waveform
from ...runtime.ports import Input, Output
from ..common.media_payloads import Image, Video


class MediaDecode(Node):
    kind = "media_decode"

    class Config(NodeConfig):
        expect: Literal["auto", "audio", "image", "video"] = Field(
            "auto", description="Kind of media to decode; auto decides from the file's streams.")
        fps: float = Field(2.0, gt=0, le=120, description="Video frames sampled per second.")
        max_frames: int = Field(256, ge=1, le=100_000, description="Most video frames; longer clips get a lower "
                                                                   "rate.")
        max_seconds: float = Field(3600.0, gt=0, le=86_400, description=(
            "Longest accepted audio or video in seconds: checked from the file's header before decoding, and "
            "decoding stops as soon as it is passed."))

    inputs = (Input("path", FilePath, doc="An audio, image or video file: any format FFmpeg or Pillow reads."),)
    outputs = (
        Output("audio", Waveform, doc="16 kHz mono float32 samples (audio files)."),
        Output("image", Image, doc="[H, W, 3] uint8 RGB pixels (image files)."),
        Output("video", Video, doc="Frames sampled at `fps`, with the audio track at 16 kHz mono if any."),
    )

    def process(self, path: FilePath) -> dict[str, Any]:
        from . import decode as d
        from .errors import check_file, fail
        from .still_image import decode_image, open_image

        file = Path(path.path)
        expect = self.config.expect
        check_file(file)
        image = open_image(file)  # still images first: Pillow reads them as the reference pipelines do
        if image is not None and expect == "video" and getattr(image, "is_animated", False):
            image.close()  # an animated GIF, WebP or PNG asked for as video: FFmpeg decodes all its frames
            image = None
        if image is not None:
            if expect in ("audio", "video"):
                fmt = image.format
                image.close()
                raise fail(file, f"is a {fmt} image, but this node expects {expect} (set expect: image or auto)")
            return {"image": _image(decode_image(file, image), file)}
        container = d.open_container(file)
        video_stream, audio_stream = d.streams_of(container)
        if video_stream is not None and d.is_still_image(container):
            return self._still(container, file, video_stream)
        if expect == "image":
            container.close()
            raise fail(file, "is not a still image that Pillow or FFmpeg reads (it is audio or video)")
        if video_stream is None and audio_stream is None:
            held = d.describe_streams(container)
            container.close()
            raise fail(file, f"has no audio or video stream that FFmpeg can decode (it holds: {held})")
        if expect == "audio" or (expect == "auto" and video_stream is None):
            if audio_stream is None:
                container.close()
                raise fail(file, "has no audio track, but this node expects audio")
            return {"audio": _waveform(self._decode(container, file, None, audio_stream)[2], file)}
        if video_stream is None:
            container.close()
            raise fail(file, "has no video stream (it is audio only), but this node expects video "
                             "(set expect: audio or auto)")
        frames, rate, samples = self._decode(container, file, video_stream, audio_stream)
        if not frames:
            raise fail(file, "has a video stream but no frame could be decoded")
        return {"video": _video(frames, rate, samples, file)}

    def _decode(self, container, file: Path, video_stream, audio_stream):
        from . import decode as d

        c = self.config
        d.check_declared_length(file, container, [s for s in (video_stream, audio_stream) if s is not None],
                                c.max_seconds)
        return d.decode(container, file, video_stream, audio_stream, c.fps, c.max_frames, c.max_seconds)

    def _still(self, container, file: Path, stream) -> dict[str, Any]:
        from . import decode as d
        from .errors import fail

        if self.config.expect in ("audio", "video"):
            name = container.format.name
            container.close()
            raise fail(file, f"is a still image ({name}), but this node expects {self.config.expect} "
                             "(set expect: image or auto)")
        return {"image": _image(d.first_frame(container, file, stream), file)}


def _image(pixels, file: Path) -> Image:
    import torch

    return Image(torch.from_numpy(pixels), source=str(file))


def _waveform(samples, file: Path) -> Waveform:
    import torch

    from .audio_track import SAMPLE_RATE

    return Waveform(torch.from_numpy(samples), SAMPLE_RATE, source=str(file))


def _video(frames, rate: float, samples, file: Path) -> Video:
    import numpy as np
    import torch

    audio = _waveform(samples, file) if samples is not None else None
    return Video(torch.from_numpy(np.stack(frames)), fps=rate, audio=audio, source=str(file))  # [F, H, W, 3]
