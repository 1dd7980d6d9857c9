"""thinker: ThinkerPrompt -> generated token ids, streamed one by one as they are produced.

Decoding: greedy, or sampled (repetition penalty, temperature, top-k, top-p) with the run's per-node seed.
Sampling fields left unset take the checkpoint's generation_config.json values when it has them, else
temperature 0.7, top_k 20, top_p 0.8, repetition_penalty 1.0 (Qwen's recommended instruct settings).
Also emits the Talker's `talker_context` (the user turns' layer-0 embeddings and accept_hidden_layer hidden
states, see nodes/qwen/payloads.TalkerContext) right after the prefill, before the first token, so a Talker
can start early; a checkpoint without talker_config emits none.
Stops after <|im_end|> (config `im_end_token_id`, 151645) or any eos id of generation_config.json (the stop
token is emitted), or after max_new_tokens.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..common.generation_settings import GenerationConfig
from ...runtime.checkpoint_config import check_budget, config_problem
from ...runtime.node import Node
from ...runtime.ports import Input, Output
from ..common.token_payloads import TokenId, TokenIds
from ..qwen.payloads import TalkerContext, ThinkerPrompt
from ..qwen3.default_checkpoint import tiny_random_checkpoint


class Thinker(Node):
    kind = "thinker"
    needs_checkpoint = True
    default_checkpoint = staticmethod(tiny_random_checkpoint)

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
        from ..qwen.special_tokens import media_token_ids, token_id
        from ..qwen.config_agreement import check_thinker_inputs

        from .batch_model import ThinkerBatchModel
        from .model import ThinkerArgs
        from .weights import load_thinker

        args = ThinkerArgs.from_hf_config(checkpoint.config)
        check_budget(self.name, "max_new_tokens", self.config.max_new_tokens, args.max_positions,
                     "thinker_config.text_config.max_position_embeddings")
        config = checkpoint.config
        check_thinker_inputs(config)
        # hidden_states index the Talker reads (layer-k output); kept for the TalkerContext hook
        self._accept_hidden_layer = (config.get("talker_config") or {}).get("accept_hidden_layer")
        if self._accept_hidden_layer is not None and not 0 <= self._accept_hidden_layer <= args.n_layers:
            raise config_problem(config["talker_config"], "accept_hidden_layer",
                                 f"must be 0 to the Thinker's num_hidden_layers ({args.n_layers}): the index of the "
                                 "hidden states the Talker reads (0: the input embeddings)")
        self._device = device
        self._model = load_thinker(checkpoint, self.weights or "thinker.", self.dtype, device)
        self._stop_ids = stop_ids(checkpoint, token_id(config, "im_end_token_id"))
        media = media_token_ids(config)
        self._media_ids = (media.audio, media.image, media.video)
        self._turn_ids = (token_id(config, "im_start_token_id"), token_id(config, "user_token_id"))
        self._engine = BatchingEngine(ThinkerBatchModel(self._model), self.config.max_batch)
        self._sampling_defaults = sampling_defaults(checkpoint)

    def sampling_params(self):
        from ..common.generation_settings import sampling_params

        return sampling_params(self.config, self._sampling_defaults)

    def stream(self, thinker_prompt: ThinkerPrompt) -> Iterator[tuple[str, Any]]:
        from ..common.generation_settings import thinker_request
        from ...runtime.context import current_run
        from ..qwen3.talker_context import build_talker_context

        from .batch_model import ThinkerInputs
        from .model import HiddenTrace

        run, params = current_run(), self.sampling_params()
        p, dtype = thinker_prompt, self._model.lm_head.weight.dtype
        trace = None if self._accept_hidden_layer is None else HiddenTrace(self._accept_hidden_layer, decode=False)
        inputs = ThinkerInputs(embeds=p.embeds.to(self._device, dtype)[None],  # [1, S, C]
                               positions=p.positions.to(self._device)[:, None],  # [3, 1, S]
                               rope_delta=float(p.rope_delta),
                               visual_mask=None if p.visual_mask is None else p.visual_mask.to(self._device)[None],
                               deepstack=tuple(d.to(self._device, dtype) for d in p.deepstack), trace=trace)
        ids = p.input_ids.to(self._device)
        request = thinker_request(self.config, params, self._stop_ids, self._model.args.dim, p.embeds, ids,
                                  inputs, self._device)
        generated = []
        for token in self._engine.submit(request):  # served together with the other runs on this node
            if trace is not None:  # the prefill ran: the trace holds the prompt
                embeds_0, hidden_k = trace.stacked()
                yield "talker_context", build_talker_context(ids, embeds_0[0], hidden_k[0], self._media_ids,
                                                             *self._turn_ids, p.layout)
                trace = None
            generated.append(token)
            yield "tokens", TokenId(token)
            if run.cancelled.is_set():
                break
        yield "token_ids", TokenIds(tuple(generated))
