"""token2wav: Qwen2.5-Omni codec ids -> 24 kHz audio chunks (DiT flow matching to a mel, then BigVGAN).

It also outputs the flat list of the ids it decoded.

mode `whole` (the default) waits for the last id and solves the ODE over the whole utterance, as transformers
does: with the same noise its waveform equals transformers'. mode `stream` emits audio as codes arrive
(streaming.py): `chunk_blocks` mel blocks once the codes of their look-ahead block are in, their samples once
BigVGAN's context frames are; the DiT sees only a window around each chunk, so the audio is an approximation of
`whole`. Concurrent runs' utterances (whole_batch.py) and stream windows (window_batch.py) that are ready
together are solved together, each with its own noise and voice: a run's waveform is the one it gets alone.

Noise: the ODE's initial state is torch.randn((1, repeats * T, mel_dim), generator=torch.Generator("cpu")
.manual_seed(seed)) (drawn on the CPU whatever the device; in stream mode block by block from the same
generator, which draws the same numbers when block_size * mel_dim is a multiple of 16); seed: the config's,
else derived from the run's seed.
"""
from __future__ import annotations

from typing import Any, Iterator, Literal

from pydantic import Field

from ...runtime.errors import CheckpointError, UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import AudioChunk, Text
from ...runtime.ports import Input, Output

from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint
from ..qwen2_5.payloads import CodecId, CodecIds

SAMPLE_RATE = 24000
NO_TOKEN2WAV = "this checkpoint has no token2wav (no speech output): use a Qwen2.5-Omni checkpoint with speech output"


class Token2Wav(Node):
    kind = "token2wav"
    needs_checkpoint = True
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        mode: Literal["whole", "stream"] = Field(
            "whole", description="whole: one ODE over the utterance after its last id (equals transformers); "
                                 "stream: audio block by block as ids arrive (an approximation of whole).")
        speaker: str | None = Field(None, description="Voice: a name in spk_dict.pt (case-sensitive); default "
                                    "Chelsie if present, else the file's first.")
        seed: int | None = Field(None, ge=0, le=2 ** 63 - 1, description="Seed of the ODE's initial noise "
                                 "(default: derived from the run's seed).")
        chunk_blocks: int = Field(2, ge=1, le=1000, description="Stream mode: mel blocks (24 frames = 12 ids "
                                  "each in the released model) decoded per ODE solve. More cost less per block "
                                  "(each solve re-solves its window's context blocks) and wait longer; 2 is the "
                                  "least with which the first solve gives audio (BigVGAN's 43-frame context).")
        num_steps: int = Field(10, ge=2, le=1000, description="ODE grid points (num_steps - 1 RK4 steps of 4 DiT "
                               "calls each), as transformers' token2wav_num_steps.")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' utterances (whole mode) or "
                               "windows (stream mode) solved together (more wait for the next batch).")

    inputs = (
        Input("codes", CodecId, stream=True, doc="Codec ids in order (from the Talker, EOS excluded)."),
        Input("speaker", Text, required=False, doc="This run's voice: a name in spk_dict.pt (default: config "
                                                   "`speaker`)."),
    )
    outputs = (
        Output("audio", AudioChunk, stream=True, doc="24 kHz float32 mono samples in [-1, 1], 480 per id."),
        Output("codec_codes", CodecIds, doc="The ids decoded, at the end."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        import torch

        from ..qwen2_5.speakers import Voices

        from .args import BigVGANArgs, DiTArgs
        from .weights import load_token2wav
        from .whole_batch import WholeBatcher
        from .window_batch import WindowBatcher

        checkpoint.section("token2wav_config", NO_TOKEN2WAV)
        try:
            args = DiTArgs.from_hf_config(checkpoint.config)
            BigVGANArgs.from_hf_config(checkpoint.config)
        except (TypeError, ValueError) as e:  # a missing field is already a located MissingConfigField
            raise CheckpointError(f"{checkpoint.path / 'config.json'}: token2wav_config: {e}") from None
        self._speakers = Voices(checkpoint, self.config.speaker, args.enc_emb_dim, args.mel_dim)
        self._dit, self._vocoder = load_token2wav(checkpoint, self.weights or "token2wav.", device)
        self._device = device
        self._wholes = WholeBatcher(self._dit, self._vocoder, self.config.num_steps, self.config.max_batch,
                                    f"{self.name} (token2wav, whole)")
        self._windows = WindowBatcher(self._dit, self.config.num_steps, self.config.max_batch,
                                      f"{self.name} (token2wav, stream)")
        if device != "meta":  # every voice's conditioning once (the speaker encoder on its reference mel)
            with torch.inference_mode():
                self._voices = {name: self._dit.voice(sp.cond.to(device), sp.ref_mel.to(device))
                                for name, sp in self._speakers.speakers.items()}

    def _check(self, code: CodecId, position: int) -> int:
        a = self._dit.args
        if not 0 <= code.id <= a.num_embeds:
            raise UserError(f"codec id {code.id} (item {position} of the codes stream) is outside [0, "
                            f"{a.num_embeds}] (token2wav_config.dit_config.num_embeds); codec control ids such as "
                            f"EOS must not reach token2wav")
        if a.repeats * (position + 1) > a.max_positions:
            raise UserError(f"{position + 1} codec ids make a mel of {a.repeats * (position + 1)} frames, more than "
                            f"token2wav's {a.max_positions} (dit_config.max_position_embeddings); split the "
                            f"utterance")
        return code.id

    def stream(self, codes: Iterator[CodecId], speaker: Text | None = None) -> Iterator[tuple[str, Any]]:
        import torch

        from ...runtime.context import current_run

        from .whole_batch import Utterance

        voice = self._voices[self._speakers.pick(None if speaker is None else speaker.text)]

        seed = self.config.seed if self.config.seed is not None else current_run().node_seed()
        generator = torch.Generator("cpu").manual_seed(seed)
        if self.config.mode == "whole":
            ids = [self._check(c, i) for i, c in enumerate(codes)]
            if ids:
                a = self._dit.args
                noise = torch.randn((1, a.repeats * len(ids), a.mel_dim), dtype=torch.float32, generator=generator)
                yield "audio", AudioChunk(self._wholes.decode(Utterance(ids, noise, voice)), SAMPLE_RATE, 0)
        else:
            ids = yield from self._stream(codes, generator, voice)
        yield "codec_codes", CodecIds(tuple(ids))

    def _stream(self, codes: Iterator[CodecId], generator: Any, voice: Any) -> Iterator[tuple[str, Any]]:
        """Mel blocks as their look-ahead codes arrive, samples as they are final; -> the ids."""
        from .streaming import MelBlocks, WaveStream

        mel = MelBlocks(self._dit, voice, generator, self.config.chunk_blocks, self._windows.solve)
        wave = WaveStream(self._vocoder)
        chunks = 0

        def pieces(blocks: list, ended: bool) -> Iterator[tuple[str, Any]]:
            nonlocal chunks
            for samples in [wave.take(b, False) for b in blocks] + ([wave.take(None, True)] if ended else []):
                if samples.numel():
                    yield "audio", AudioChunk(samples.cpu(), SAMPLE_RATE, chunks)
                    chunks += 1

        for position, code in enumerate(codes):
            mel.codes.append(self._check(code, position))
            yield from pieces(mel.ready(False), False)
        yield from pieces(mel.ready(True), True)
        return mel.codes
