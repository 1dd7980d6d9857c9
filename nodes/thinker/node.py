"""thinker: ThinkerPrompt -> generated token ids, streamed one by one as they are produced.

Decoding: greedy, or sampled (repetition penalty, temperature, top-k, top-p) with the run's per-node seed.
Sampling fields left unset take the checkpoint's generation_config.json values when it has them, else
temperature 0.7, top_k 20, top_p 0.8, repetition_penalty 1.0 (Qwen's recommended instruct settings).
Also emits the Talker's `talker_context` (the user turns' layer-0 embeddings and accept_hidden_layer hidden
states, see runtime/media_payloads.TalkerContext) right after the prefill, before the first token, so a Talker
can start early; a checkpoint without talker_config emits none.
Stops after <|im_end|> (config `im_end_token_id`, 151645) or any eos id of generation_config.json (the stop
token is emitted), or after max_new_tokens.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..common.generation_settings import GenerationConfig
from ...runtime.checkpoint_config import check_budget
from ...runtime.errors import UserError
from ...runtime.media_payloads import TalkerContext, ThinkerPrompt, TokenId, TokenIds
from ...runtime.node import Node
from ...runtime.ports import Input, Output


class Thinker(Node):
    kind = "thinker"
    needs_checkpoint = True

    class Config(GenerationConfig):
        pass

    inputs = (Input("thinker_prompt", ThinkerPrompt, doc="Prompt embeddings and TM-RoPE positions."),)
    outputs = (
        Output("tokens", TokenId, stream=True, doc="Each generated token id as soon as it is chosen."),
        Output("token_ids", TokenIds, doc="All generated ids, at the end."),
        Output("talker_context", TalkerContext, doc="The prompt's user turns for the Talker, after prefill."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.engine import BatchingEngine
        from ..common.generation_settings import sampling_defaults, stop_ids

        from .batch_model import ThinkerBatchModel
        from .model import ThinkerArgs
        from .weights import load_thinker

        if checkpoint is None:
            raise UserError(f"node '{self.name}' (thinker) needs a checkpoint (pass --checkpoint DIR)")
        args = ThinkerArgs.from_hf_config(checkpoint.config)
        check_budget(self.name, "max_new_tokens", self.config.max_new_tokens, args.max_positions,
                     "thinker_config.text_config.max_position_embeddings")
        self._device = device
        self._model = load_thinker(checkpoint, self.weights or "thinker.", self.dtype, device)
        config = checkpoint.config
        self._stop_ids = stop_ids(checkpoint, config.get("im_end_token_id", 151645))
        # hidden_states index the Talker reads (layer-k output); kept for the TalkerContext hook
        self._accept_hidden_layer = (config.get("talker_config") or {}).get("accept_hidden_layer")
        from ..common.mrope_positions import MediaTokenIds

        media = MediaTokenIds.from_hf_config(config)
        self._media_ids = (media.audio, media.image, media.video)
        self._turn_ids = (int(config.get("im_start_token_id", 151644)), int(config.get("user_token_id", 872)))
        self._engine = BatchingEngine(ThinkerBatchModel(self._model), self.config.max_batch)
        self._sampling_defaults = sampling_defaults(checkpoint)

    def sampling_params(self):
        from ..common.generation_settings import sampling_params

        return sampling_params(self.config, self._sampling_defaults)

    def stream(self, thinker_prompt: ThinkerPrompt) -> Iterator[tuple[str, Any]]:
        from ..common.engine import GenerationRequest
        from ..common.sampling import make_generator
        from ...runtime.context import current_run

        from .batch_model import ThinkerInputs
        from .model import HiddenTrace, build_talker_context

        run = current_run()
        params = self.sampling_params()
        generator = None if params.greedy else make_generator(run.node_seed(), self._device)
        p, dtype = thinker_prompt, self._model.lm_head.weight.dtype
        if p.embeds.shape[-1] != self._model.args.dim:
            raise UserError(f"the prompt embeddings have width {p.embeds.shape[-1]} but this Thinker's is "
                            f"{self._model.args.dim} (mrope_interleaver and thinker use different checkpoints?)")
        trace = None if self._accept_hidden_layer is None else HiddenTrace(self._accept_hidden_layer, decode=False)
        inputs = ThinkerInputs(embeds=p.embeds.to(self._device, dtype)[None],  # [1, S, C]
                               positions=p.positions.to(self._device)[:, None],  # [3, 1, S]
                               rope_delta=float(p.rope_delta),
                               visual_mask=None if p.visual_mask is None else p.visual_mask.to(self._device)[None],
                               deepstack=tuple(d.to(self._device, dtype) for d in p.deepstack), trace=trace)
        ids = p.input_ids.to(self._device)
        request = GenerationRequest(prompt_len=inputs.embeds.shape[1], max_new_tokens=self.config.max_new_tokens,
                                    params=params, generator=generator, stop_ids=frozenset(self._stop_ids),
                                    cancelled=run.cancelled, prompt_ids=ids, state=inputs)
        generated = []
        for token in self._engine.submit(request):  # served together with the other runs on this node
            if trace is not None:  # the prefill ran: the trace holds the prompt
                embeds_0, hidden_k = trace.stacked()
                yield "talker_context", build_talker_context(ids, embeds_0[0], hidden_k[0], self._media_ids,
                                                             *self._turn_ids, p.extras)
                trace = None
            generated.append(token)
            yield "tokens", TokenId(token)
            if run.cancelled.is_set():
                break
        yield "token_ids", TokenIds(tuple(generated))
