"""media_decode: decode a media file with PyAV (Pillow for still images) into exactly one of its outputs.

`expect: auto` picks the kind from the file: a still-image format -> image; a container with a video stream
(cover art does not count) -> video; audio streams only -> audio. `expect: audio` also takes the audio track of
a video file. Unreadable, corrupt, empty or unsupported files, and files of another kind than expected, fail
with a UserError naming the file and the rule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...runtime.media_payloads import Image, Video
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import FilePath, Waveform
from ...runtime.ports import Input, Output


class MediaDecode(Node):
    kind = "media_decode"

    class Config(NodeConfig):
        expect: Literal["auto", "audio", "image", "video"] = Field(
            "auto", description="Kind of media to decode; auto decides from the file's streams.")
        fps: float = Field(2.0, gt=0, le=120, description="Video frames sampled per second.")
        max_frames: int = Field(256, ge=1, le=100_000, description="Most video frames; longer clips get a lower rate.")

    inputs = (Input("path", FilePath, doc="An audio (wav, flac, mp3, ogg, m4a), image (png, jpg, webp) "
                                          "or video (mp4, mkv, webm) file."),)
    outputs = (
        Output("audio", Waveform, doc="16 kHz mono float32 samples (audio files)."),
        Output("image", Image, doc="[H, W, 3] uint8 RGB pixels (image files)."),
        Output("video", Video, doc="Frames sampled at `fps`, with the audio track at 16 kHz mono if any."),
    )

    def process(self, path: FilePath) -> dict[str, Any]:
        import numpy as np
        import torch

        from . import decode as d

        file = Path(path.path)
        expect = self.config.expect
        d.check_file(file)
        image = d.open_image(file)  # still images first: Pillow reads them as the reference pipelines do
        if image is not None:
            if expect in ("audio", "video"):
                fmt = image.format
                image.close()
                raise d.fail(file, f"is a {fmt} image, but this node expects {expect} "
                                    "(set expect: image or auto)")
            pixels = d.decode_image(file, image)
            return {"image": Image(torch.from_numpy(pixels), source=str(file))}
        if expect == "image":
            raise d.fail(file, "is not a readable still image; supported images: png, jpg, webp")
        container = d.open_container(file)
        video_stream, audio_stream = d.streams_of(container)
        if video_stream is None and audio_stream is None:
            container.close()
            raise d.fail(file, "has no audio or video streams")
        if expect == "audio" or (expect == "auto" and video_stream is None):
            if audio_stream is None:
                container.close()
                raise d.fail(file, "has no audio track, but this node expects audio")
            _, _, samples = d.decode(container, file, None, audio_stream, self.config.fps, self.config.max_frames)
            return {"audio": Waveform(torch.from_numpy(samples), d.SAMPLE_RATE)}
        if video_stream is None:
            container.close()
            raise d.fail(file, "has no video stream (it is audio only), but this node expects video "
                                "(set expect: audio or auto)")
        frames, rate, samples = d.decode(container, file, video_stream, audio_stream, self.config.fps,
                                         self.config.max_frames)
        if not frames:
            raise d.fail(file, "has a video stream but no frame could be decoded")
        audio = Waveform(torch.from_numpy(samples), d.SAMPLE_RATE) if samples is not None else None
        pixels = torch.from_numpy(np.stack(frames))  # [F, H, W, 3] uint8
        return {"video": Video(pixels, fps=rate, audio=audio, source=str(file))}
