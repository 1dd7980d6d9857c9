"""qwen2_5_audio_encoder: log-mel features of a prompt's clips -> packed audio token embeddings (Qwen2.5-Omni)."""
from __future__ import annotations

import itertools
from typing import Any

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ..common.media_payloads import AudioEmbeddings, MelFeatures
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint


class Qwen25AudioEncoderNode(Node):
    """Qwen2.5-Omni's Whisper-style audio encoder (25 tokens per second). Sizes come from config.json
    (thinker_config.audio_config); weights from the node's `weights` prefix (default 'thinker.audio_tower.')."""

    kind = "qwen2_5_audio_encoder"
    needs_checkpoint = True
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="Weights and compute dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' prompts encoded in one "
                               "batched call (more wait for the next call).")

    inputs = (Input("mel", MelFeatures, doc="Valid log-mel frames per clip, [n_mels, T_i] each (mel_frontend "
                                            "with padding: max_length, as the Qwen2.5-Omni processor pads)."),)
    outputs = (Output("audio", AudioEmbeddings, doc="[sum of tokens, output_dim] in clip order, tokens per "
                                                    "clip (25 per second of audio; 0 for clips of 1-2 frames)."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.step_batcher import StepBatcher
        from .weights import PREFIX, load_audio_encoder

        try:
            self.model = load_audio_encoder(checkpoint, self.dtype, device, self.weights or PREFIX)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{checkpoint.path}/config.json: thinker_config.audio_config: {exc}") from None
        self._batcher = StepBatcher(self._encode, self.config.max_batch, f"{self.name}: audio batch")

    def process(self, mel: MelFeatures) -> dict[str, Any]:
        if not mel.features:
            return {}
        bins = self.model.args.num_mel_bins
        for i, f in enumerate(mel.features):
            if f.ndim != 2 or f.shape[0] != bins:
                raise UserError(f"node '{self.name}' ({self.kind}): mel features of audio clip {i + 1} of "
                                f"{len(mel.features)} have shape {list(f.shape)}; this encoder takes [{bins}, "
                                f"frames] (is the mel frontend's preprocessor_config.json from the same model?)")
        return {"audio": self._batcher.call(mel.features)}

    def _encode(self, prompts: list[tuple]) -> list[AudioEmbeddings]:
        """The clips of several prompts encoded as one packed batch (attention and pooling never cross a clip,
        so each prompt's embeddings are those it gets alone), split back per prompt."""
        embeddings, tokens = self.model([f for features in prompts for f in features])
        ends = list(itertools.accumulate(len(features) for features in prompts))
        per_prompt = [tuple(tokens[end - len(features):end]) for features, end in zip(prompts, ends)]
        rows = embeddings.split([sum(t) for t in per_prompt])
        return [AudioEmbeddings(r.clone(), t) for r, t in zip(rows, per_prompt)]  # own storage per prompt
