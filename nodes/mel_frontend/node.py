"""mel_frontend: the prompt's audio clips (16 kHz mono) as log-mel features, one batch per prompt."""
from __future__ import annotations

from functools import partial
from typing import Any, Literal

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.media_payloads import MelFeatures, PromptTokens
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output


class MelFrontend(Node):
    """Log-mel features of every audio clip of a prompt, computed as one padded batch.

    The clips are batched together the way the Hugging Face processor batches them, so each clip's features
    match the reference processor's for the same prompt (they depend slightly on the longest clip of the batch).
    Prompts of concurrent runs that arrive together are computed in one batched call too, each prompt's
    features exactly those of the prompt alone (`max_batch` prompts at most).
    Mel size, FFT size, hop and sample rate come from the checkpoint's preprocessor_config.json when it has one,
    else the Whisper defaults (128 mels, n_fft 400, hop 160, 16 kHz).
    """

    kind = "mel_frontend"

    class Config(NodeConfig):
        max_seconds: float | None = Field(
            None, gt=0, description="Longest accepted clip in seconds; default: the checkpoint's n_samples / "
                                    "sampling_rate, else 300 s.")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' prompts computed in one "
                               "batched call (more wait for the next call).")
        padding: Literal["longest", "max_length"] = Field(
            "longest", description="How the processor pads the clips of a prompt: 'longest' (Qwen3-Omni: to the "
                                   "longest clip) or 'max_length' (Qwen2.5-Omni: each clip to n_samples, so every "
                                   "clip gets ceil(samples / hop) frames).")

    inputs = (Input("prompt", PromptTokens, doc="A prompt; its `audios` hold the clips in prompt order."),)
    outputs = (Output("mel", MelFeatures, doc="features[i]: [n_mels, valid frames] per clip; absent when "
                                               "the prompt has no audio."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.step_batcher import StepBatcher
        from .model import LogMel, MelArgs

        preprocessor = checkpoint.json_file("preprocessor_config.json") if checkpoint is not None else None
        self.args = MelArgs.from_hf_config(preprocessor)
        self.device = device
        self.logmel = LogMel(self.args).to(device)
        run = partial(self.logmel.prompts, max_length=self.config.padding == "max_length")
        self._batcher = StepBatcher(run, self.config.max_batch, f"{self.name}: mel batch")

    def process(self, prompt: PromptTokens) -> dict[str, Any]:
        clips = prompt.audios
        if not clips:
            return {}
        args = self.args
        max_samples = (round(self.config.max_seconds * args.sample_rate) if self.config.max_seconds is not None
                       else args.max_samples)
        for i, clip in enumerate(clips):
            where = _clip_name(i, clips)
            if clip.sample_rate != args.sample_rate:
                raise UserError(f"{where} is at {clip.sample_rate} Hz; the model takes {args.sample_rate} Hz "
                                f"audio (resample it first, e.g. decode it with media_decode)")
            if clip.samples.ndim != 1:
                raise UserError(f"{where} has shape {list(clip.samples.shape)}; expected mono samples [N] "
                                f"(mix the channels down first)")
            if clip.samples.shape[0] == 0:
                raise UserError(f"{where} is empty (0 samples)")
            if clip.samples.shape[0] > max_samples:
                raise UserError(f"{where} is {clip.seconds:.2f} s long, over the model's limit of "
                                f"{max_samples / args.sample_rate:g} s per audio clip; cut it into shorter clips "
                                f"(or raise mel_frontend's max_seconds)")
        lengths = [int(clip.samples.shape[0]) for clip in clips]
        padded = max(lengths)
        # the Hugging Face feature extractor fails here too (reflect padding; max_length pads every clip far)
        if padded <= args.n_fft // 2 and self.config.padding == "longest":
            need = args.n_fft // 2
            names = ", ".join(_clip_name(i, clips) for i in range(len(clips)))
            raise UserError(f"{names}: too short for the mel frontend: the longest clip has {padded} samples "
                            f"({padded / args.sample_rate * 1000:.1f} ms) and it needs more than {need} "
                            f"({need / args.sample_rate * 1000:.1f} ms); give a longer clip")
        mel = self._batcher.call(tuple(clip.samples for clip in clips))
        return {"mel": MelFeatures(mel)}


def _clip_name(i: int, clips) -> str:
    """'audio clip 2 of 3 (from speech.wav)': which clip, and the file it was decoded from when known."""
    source = getattr(clips[i], "source", "")
    return f"audio clip {i + 1} of {len(clips)}" + (f" (from '{source}')" if source else "")
