"""audio_encoder: log-mel features of a prompt's clips -> packed audio token embeddings (Qwen3-Omni AuT)."""
from __future__ import annotations

import itertools
from typing import Any

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.errors import UserError
from ...runtime.media_payloads import AudioEmbeddings, MelFeatures
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output

DEFAULT_PREFIX = "thinker.audio_tower."


class AudioEncoderNode(Node):
    """Qwen3-Omni's audio encoder. Sizes come from config.json (thinker_config.audio_config); weights from
    the node's `weights` prefix (default 'thinker.audio_tower.')."""

    kind = "audio_encoder"
    needs_checkpoint = True

    class Config(NodeConfig):
        dtype: DTypeSetting = Field("auto", description="Weights and compute dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' prompts encoded in one "
                               "batched call (more wait for the next call).")

    inputs = (Input("mel", MelFeatures, doc="Valid log-mel frames per clip, [n_mels, T_i] each."),)
    outputs = (Output("audio", AudioEmbeddings, doc="[sum of tokens, output_dim] in clip order, tokens per "
                                                    "clip (about 13 per second of audio)."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        import torch

        from ..common.step_batcher import StepBatcher
        from .model import AudioEncoder, AudioEncoderArgs
        from .weights import load_audio_encoder_weights

        if checkpoint is None:
            raise UserError(f"node '{self.name}' (audio_encoder) needs a checkpoint: pass a checkpoint folder "
                            f"holding the audio encoder's weights")
        prefix = self.weights or DEFAULT_PREFIX
        try:
            args = AudioEncoderArgs.from_hf_config(checkpoint.config)
        except (TypeError, ValueError) as exc:
            raise UserError(f"{checkpoint.path}/config.json: thinker_config.audio_config: {exc}") from None
        dtype = self.dtype
        state = load_audio_encoder_weights(checkpoint, prefix, args, dtype, device)
        with torch.device("meta"):
            model = AudioEncoder(args)
        model.load_state_dict(state, strict=True, assign=True)
        model.reset_buffers(device)
        self.args, self.model = args, model.to(device).eval()
        self.device, self.dtype = device, dtype
        self._batcher = StepBatcher(self._encode, self.config.max_batch, f"{self.name}: audio batch")

    def process(self, mel: MelFeatures) -> dict[str, Any]:
        if not mel.features:
            return {}
        for i, f in enumerate(mel.features):
            if f.ndim != 2 or f.shape[0] != self.args.num_mel_bins:
                raise UserError(f"mel features of audio clip {i + 1} have shape {list(f.shape)}; this audio "
                                f"encoder takes [{self.args.num_mel_bins}, frames] (is the mel frontend's "
                                f"preprocessor_config.json from the same model?)")
        return {"audio": self._batcher.call(mel.features)}

    def _encode(self, prompts: list[tuple]) -> list[AudioEmbeddings]:
        """The clips of several prompts encoded as one packed batch (attention never crosses clips, so each
        prompt's embeddings are those it gets alone), split back per prompt."""
        embeddings, tokens = self.model([f for features in prompts for f in features], [len(f) for f in prompts])
        ends = list(itertools.accumulate(len(features) for features in prompts))
        per_prompt = [tuple(tokens[end - len(features):end]) for features, end in zip(prompts, ends)]
        rows = embeddings.split([sum(t) for t in per_prompt])
        return [AudioEmbeddings(r.clone(), t) for r, t in zip(rows, per_prompt)]  # own storage per prompt
