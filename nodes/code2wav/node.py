"""code2wav: a stream of codec frames (G codes per 80 ms) -> a stream of 24 kHz audio chunks (Qwen3-Omni)."""
from __future__ import annotations

from typing import Any, Iterator, Literal

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import AudioChunk
from ...runtime.ports import Input, Output
from ..qwen.payloads import CodecFrame
from ..qwen3.default_checkpoint import tiny_random_checkpoint

DEFAULT_PREFIX = "code2wav."
SAMPLE_RATE = 24000


class Code2WavNode(Node):
    """Qwen3-Omni's causal ConvNet vocoder. Sizes come from config.json (code2wav_config); weights from the
    node's `weights` prefix (default 'code2wav.'). In stream mode every frame costs the same and its samples
    leave as soon as they are final; the concatenated chunks equal the whole-utterance decode. Concurrent runs'
    streams are decoded together (up to max_batch chunks per call, stream_batch.py), each with its own causal
    state, and so are their whole decodes on CUDA (whole_batch.py); a run's samples are the same alone or
    batched."""

    kind = "code2wav"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        mode: Literal["stream", "whole"] = Field(
            "stream", description="stream: decode as frames arrive, keeping the causal state; whole: decode "
                                  "all frames at once after the last one (one chunk).")
        chunk_frames: int = Field(
            1, ge=1, le=4096,
            description="Frames per emitted chunk in stream mode. 1 (80 ms) gives the lowest latency; "
                                 "larger values cost less per frame (fewer, larger conv calls: on one CPU core "
                                 "the `small` model takes ~8 ms per frame at 1, ~3.4 ms at 4) at the price of "
                                 "waiting for that many frames.")
        dtype: DTypeSetting = Field("auto", description="Weights and compute dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' chunks decoded in one batch "
                               "(more wait for the next one).")

    inputs = (Input("frames", CodecFrame, stream=True, doc="Codec frames in order, G codes each (codebook 0 "
                                                          "first)."),)
    outputs = (Output("audio", AudioChunk, stream=True, doc="24 kHz float32 mono samples in [-1, 1]; the first "
                                                           "chunk of T frames holds 1920*T - 555 samples, later "
                                                           "ones 1920 per frame."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen.config_agreement import check_code2wav_inputs
        from ..qwen3.speech_output import NO_TALKER

        from .model import Code2WavArgs
        from .stream_batch import StreamBatcher
        from .weights import load_code2wav
        from .whole_batch import WholeBatcher

        checkpoint.section("code2wav_config", NO_TALKER)
        try:
            args = Code2WavArgs.from_hf_config(checkpoint.config)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{checkpoint.path}/config.json: code2wav_config: {exc}") from None
        check_code2wav_inputs(checkpoint.config, args.num_quantizers, args.codebook_size)
        self.args, self.model = args, load_code2wav(checkpoint, self.weights or DEFAULT_PREFIX, self.dtype, device)
        self.streams = StreamBatcher(self.model, self.config.max_batch, f"{self.name} (code2wav)")
        self.wholes = WholeBatcher(self.model, self.config.max_batch, f"{self.name} (code2wav, whole)")

    def _codes(self, frame: CodecFrame, position: int) -> list[int]:
        G, V = self.args.num_quantizers, self.args.codebook_size
        codes = list(frame.codes)
        if len(codes) != G:
            raise UserError(f"codec frame {frame.index} (item {position} of the stream) has {len(codes)} codes; "
                            f"this code2wav takes {G} (num_quantizers), codebook 0 first")
        bad = [c for c in codes if not 0 <= c < V]
        if bad:
            raise UserError(f"codec frame {frame.index} (item {position} of the stream) has code {bad[0]}, "
                            f"outside [0, {V}) (codebook_size); codec control tokens such as EOS must not "
                            f"reach code2wav")
        return codes

    def items_coming(self, port: str, notices: list[tuple[str, int]]) -> None:
        """Frames (run id, index) on their way to the runs' streams (a fused Talker's batch, runtime/loops.py):
        their chunks are decoded together, not split by the order the frames arrive in."""
        self.streams.coming(notices)

    def stream(self, frames: Iterator[CodecFrame]) -> Iterator[tuple[str, AudioChunk]]:
        from ...runtime.context import current_run

        from .stream_batch import Stream

        whole = self.config.mode == "whole"
        size = self.config.chunk_frames
        stream = Stream(current_run().run_id)  # this run's causal state, a slot of the shared one from its chunk 0
        pending: list[list[int]] = []
        index = 0
        try:
            for position, frame in enumerate(self.streams.frames(stream, frames)):
                pending.append(self._codes(frame, position))
                if not whole and len(pending) == size:
                    samples, pending = self.streams.decode(stream, pending), []
                    if samples.numel():
                        self.streams.away(stream)  # until its next frames: handing the chunk on may wait
                        yield "audio", AudioChunk(samples, SAMPLE_RATE, index)
                        index += 1
            if pending:  # the last partial chunk, or every frame in whole mode; nothing else is held back
                samples = self.wholes.decode(pending) if whole else self.streams.decode(stream, pending)
                if samples.numel():
                    yield "audio", AudioChunk(samples, SAMPLE_RATE, index)
        finally:  # finished, failed or cancelled: the slot is free for the next run at once
            self.streams.release(stream)
