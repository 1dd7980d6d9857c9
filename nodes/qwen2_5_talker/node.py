"""qwen2_5_talker: Qwen2.5-Omni Thinker states -> a stream of codec ids (one codebook, 50/s) for token2wav.

The prefill needs the prompt and the first reply state (reply_0, the state of the first generated token); then
step s feeds the last codec id's embedding plus trailing[s - 1] (reply_s), waiting for the next ThinkerState
only when it has not arrived; once the states stream ends, text_eos and then text_pad forever (reference
qwen2.5-omni.md section 6.2). Generation stops at a codec EOS (8292 or 8294, not emitted) or after
max_codes ids. A states stream with no item gives no codes.

Concurrent runs share the loaded Talker's forward passes (server.py, the Qwen3 Talker's lockstep rule): runs join
between steps and leave when done or cancelled; the steps of the runs in step are one batch, each row's id chosen
with its run's own settings, generator and repetition history, so a run's codes are those it gets alone. A run
tells the server when it waits for its next state or its consumer, so a slow Thinker never holds the others.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator

from pydantic import Field

from ...runtime.checkpoint_config import check_budget
from ...runtime.device import DTypeSetting
from ...runtime.errors import CheckpointError, UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output

from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint
from ..qwen2_5.payloads import CodecId, CodecIds, TalkerPrompt, ThinkerState

NO_TALKER = "this checkpoint has no Talker (no speech output): use a Qwen2.5-Omni checkpoint with speech output"


class Qwen25Talker(Node):
    kind = "qwen2_5_talker"
    needs_checkpoint = True
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(NodeConfig):
        speaker: str | None = Field(None, description="Voice: a name in spk_dict.pt (case-sensitive); default "
                                    "Chelsie if present, else the file's first.")
        greedy: bool = Field(False, description="Pick the most likely id instead of sampling (the repetition "
                             "penalty still applies, as in transformers).")
        temperature: float = Field(0.9, gt=0, description="Sampling temperature.")
        top_k: int = Field(40, ge=0, le=1_000_000, description="Keep the k most likely ids; 0 = all.")
        top_p: float = Field(0.8, gt=0, le=1, description="Nucleus probability mass.")
        repetition_penalty: float = Field(1.05, gt=0, description="Penalty on the prompt's filler ids and the ids "
                                          "generated so far.")
        eos_ids: list[int] | None = Field(None, description="Codec ids that end generation (not emitted); default "
                                          "talker_config's codec pad and end ids (8292, 8294).")
        suppress_ids: list[int] | None = Field(None, description="Codec ids never generated; default talker_config's "
                                               "codec start id (8293).")
        max_codes: int = Field(4096, ge=1, le=1_000_000, description="Most ids to generate (an EOS counts).")
        dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                        "CUDA, float32 on CPU).")
        max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs' decode steps computed "
                               "together (more wait for the next step).")

    inputs = (
        Input("talker_prompt", TalkerPrompt, doc="The prompt's thinker-space states and TMRoPE positions."),
        Input("states", ThinkerState, stream=True, doc="Per generated thinker token, its thinker-space state."),
        Input("speaker", Text, required=False, doc="This run's voice: a name in spk_dict.pt (default: config "
                                                   "`speaker`)."),
    )
    outputs = (
        Output("codes", CodecId, stream=True, doc="Codec ids as they are generated (EOS excluded)."),
        Output("codec_codes", CodecIds, doc="All codec ids, at the end (EOS excluded)."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        import torch

        from ..qwen.config_agreement import check_talker_inputs
        from ..qwen2_5.speakers import Voices

        from .model import TalkerArgs
        from .server import TalkerServer
        from .weights import embedding_rows, load_talker, thinker_embed_table

        checkpoint.section("talker_config", NO_TALKER)
        check_talker_inputs(checkpoint.config, "embedding_size")
        try:
            args = TalkerArgs.from_hf_config(checkpoint.config)
        except (TypeError, ValueError) as e:  # a missing field is already a located MissingConfigField
            raise CheckpointError(f"{checkpoint.path / 'config.json'}: talker_config: {e}") from None
        check_budget(self.name, "max_codes", self.config.max_codes, args.text.max_positions,
                     "talker_config.max_position_embeddings")
        self._voices = Voices(checkpoint, self.config.speaker)
        speakers = self._voices.speakers
        table = thinker_embed_table(checkpoint.config)
        vocab = table.keys[0].shape[0]
        for what, token in ([(f"bos_token of speaker '{name}'", sp.bos_token) for name, sp in speakers.items()]
                            + [("talker_config.tts_text_end_token_id", args.ids.text_eos),
                               ("talker_config.tts_text_pad_token_id", args.ids.text_pad)]):
            if not 0 <= token < vocab:
                raise CheckpointError(f"{checkpoint.path}: {what} = {token} is outside the Thinker vocabulary "
                                      f"({vocab} ids)")
        # the Thinker embedding of every voice's bos token (the only way a voice reaches the Talker), text eos, pad
        rows = embedding_rows(checkpoint, table, [sp.bos_token for sp in speakers.values()]
                              + [args.ids.text_eos, args.ids.text_pad], self.dtype, device)
        self._speaker_embeds = dict(zip(speakers, rows[:-2].unbind(0)))
        self._text_eos, self._text_pad = rows[-2], rows[-1]
        self._model = load_talker(checkpoint, self.weights or "talker.", self.dtype, device)
        self._device = device
        ids, c, V = args.ids, self.config, args.text.vocab_size
        eos = c.eos_ids if c.eos_ids is not None else [ids.codec_pad, ids.codec_eos]
        banned = c.suppress_ids if c.suppress_ids is not None else [ids.codec_bos]
        for field, values in (("eos_ids", eos), ("suppress_ids", banned)):
            if any(not 0 <= v < V for v in values):
                raise UserError(f"node '{self.name}' (qwen2_5_talker): {field} {values} must be codec ids in [0, {V})")
        suppress = torch.zeros(V, dtype=torch.bool, device=device)
        suppress[banned] = True
        self._eos = set(eos)
        self._server = TalkerServer(self._model, suppress, self.config.max_batch, f"{self.name}-steps")

    def _speaker_embed(self, speaker: Text | None) -> Any:
        """The Thinker embedding of this run's voice's bos token: [D]."""
        return self._speaker_embeds[self._voices.pick(None if speaker is None else speaker.text)]

    def stream(self, talker_prompt: TalkerPrompt, states: Iterator[ThinkerState],
               speaker: Text | None = None) -> Iterator[tuple[str, Any]]:
        import torch

        from ..common.decode_buffers import TokenHistory
        from ..common.row_choice import RowChoice
        from ..common.sampling import SamplingParams, make_generator
        from ...runtime.context import current_run

        from .prompt import check_prompt, check_state, prefill_inputs, step_position
        from .server import Voice

        run, c, model, ids = current_run(), self.config, self._model, self._model.args.ids
        params = SamplingParams(greedy=c.greedy, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p)
        generator = None if c.greedy else make_generator(run.node_seed(), self._device)
        width = model.args.thinker_dim
        check_prompt(talker_prompt, width)
        states = iter(states)
        first = next(states, None)
        if first is None:
            yield "codec_codes", CodecIds(())
            return
        with torch.inference_mode():
            inputs, positions = prefill_inputs(model, talker_prompt, self._speaker_embed(speaker),
                                               check_state(first, 0, width))
        P = inputs.shape[1]
        filler = torch.tensor([ids.codec_mask] * (P - 2) + [ids.codec_pad, ids.codec_bos], device=self._device)
        # the penalty sees the prompt's filler ids too
        voice = Voice(RowChoice(params, generator, c.repetition_penalty, TokenHistory(self._device, filler[None])))
        codes, feed = [], self._trailing(states, width, voice)
        try:
            code = self._server.prefill(voice, inputs, positions, P + c.max_codes)
            for s in range(1, c.max_codes + 1):
                if code in self._eos:
                    break
                codes.append(code)
                self._server.away(voice)  # handing the id on may wait for the consumer
                yield "codes", CodecId(code)
                self._server.back(voice)
                if s == c.max_codes or run.cancelled.is_set():
                    break
                code = self._server.step(voice, next(feed), step_position(talker_prompt, s))
        finally:
            self._server.release(voice)
        yield "codec_codes", CodecIds(tuple(codes))

    def _trailing(self, states: Iterator[ThinkerState], width: int, voice: Any) -> Iterator[Any]:
        """The text part of decode steps 1, 2, ...: reply_1, reply_2, ... as they arrive (the run away from the
        server while it waits for each), then text_eos, then text_pad forever."""
        from .prompt import check_state

        for j in itertools.count(1):
            self._server.away(voice)
            state = next(states, None)
            self._server.back(voice)
            if state is None:
                break
            yield check_state(state, j, width)
        yield self._text_eos
        while True:
            yield self._text_pad
