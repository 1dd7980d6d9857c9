"""vad: speech segments of a recording, with Silero VAD (the `silero-vad` package's ONNX model, onnxruntime).

Takes a whole waveform or a stream of audio chunks (any sample rate; resampled to 16 kHz with soxr) and gives
each segment as soon as the silence after it is long enough: the clip itself (for `asr`) and its times.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ..common.extras import import_extra, package_file
from ...runtime.payloads import AudioChunk, Waveform
from ...runtime.ports import Input, Output
from ..common.speech_payloads import SpeechClip, SpeechSegment

EXTRA = "vad"


class Vad(Node):
    kind = "vad"

    class Config(NodeConfig):
        threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability that opens a segment (it "
                                 "closes below threshold - 0.15).")
        min_speech: float = Field(0.25, ge=0, le=60, description="Shortest segment kept, in seconds.")
        min_silence: float = Field(0.5, gt=0, le=60, description="Silence that ends a segment, in seconds.")
        pad: float = Field(0.2, ge=0, le=5, description="Seconds of audio kept around each segment.")
        model: str | None = Field(None, description="A Silero VAD .onnx file (default: the silero-vad package's "
                                                    "silero_vad.onnx).")

    inputs = (
        Input("audio", Waveform, required=False, doc="A whole recording (mono, any sample rate)."),
        Input("chunks", AudioChunk, stream=True, required=False, doc="A recording as it arrives (one rate)."),
    )
    outputs = (
        Output("speech", SpeechClip, stream=True, doc="Each speech segment's 16 kHz samples and start time."),
        Output("segments", SpeechSegment, stream=True, doc="Each speech segment's start and end, in seconds."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.onnx_session import onnx_session

        needed_by = f"node '{self.name}' (vad)"
        ort = import_extra("onnxruntime", EXTRA, needed_by)
        path = (Path(self.config.model).expanduser() if self.config.model
                else package_file("silero_vad", "data/silero_vad.onnx", EXTRA, needed_by))
        if not path.is_file():
            raise UserError(f"{needed_by}: model file '{path}' does not exist (config field `model`)")
        try:
            self._session = onnx_session(path, "cpu", ort, threads=1)  # one frame at a time: threads do not help
        except Exception as exc:  # onnxruntime raises its own types for a file that is not a model
            raise UserError(f"{needed_by}: cannot load '{path}' as an ONNX model: {exc}") from exc

    def stream(self, audio: Waveform | None = None,
               chunks: Iterable[AudioChunk] | None = None) -> Iterator[tuple[str, Any]]:
        import torch

        from .recording import Recording
        from .segmenter import Segmenter, SegmenterSettings
        from .silero import FRAME, SAMPLE_RATE, SileroStream

        if (audio is None) == (chunks is None):
            raise UserError(f"node '{self.name}' (vad) takes exactly one of `audio` (a whole waveform) and "
                            f"`chunks` (a stream); {'both were' if audio is not None else 'neither was'} given")
        c = self.config
        model = SileroStream(self._session)
        segmenter = Segmenter(SegmenterSettings(c.threshold, c.min_speech, c.min_silence, c.pad), SAMPLE_RATE, FRAME)
        keep_before = round((c.pad + c.min_silence) * SAMPLE_RATE) + 2 * FRAME  # what an open span may still need
        source = audio.source if audio is not None else ""
        recording = None
        for samples, rate, last in _pieces(audio, chunks):
            if recording is None:
                recording = Recording(rate, f"the audio of node '{self.name}'")
            spans = segmenter.push(model.probabilities(recording.add(samples, rate, last)))
            if last:
                spans += segmenter.finish(recording.total)
            for start, end in spans:
                clip = torch.from_numpy(recording.cut(start, end))
                yield "speech", SpeechClip(clip, SAMPLE_RATE, source, start=start / SAMPLE_RATE)
                yield "segments", SpeechSegment(start / SAMPLE_RATE, end / SAMPLE_RATE)
            open_from = segmenter.open_start
            recording.forget_before((recording.total if open_from is None else open_from) - keep_before)


def _pieces(audio: Waveform | None, chunks: Iterable[AudioChunk] | None) -> Iterator[tuple[Any, int, bool]]:
    """(samples as numpy, sample rate, is the last piece) for a whole waveform or a chunk stream."""
    import numpy as np

    if audio is not None:
        yield audio.samples.detach().cpu().float().numpy(), audio.sample_rate, True
        return
    rate = None
    for chunk in chunks:
        rate = chunk.sample_rate
        yield chunk.samples.detach().cpu().float().numpy(), rate, False
    if rate is not None:
        yield np.zeros(0, np.float32), rate, True
