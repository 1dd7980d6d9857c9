"""qwen2_5_thinker: Qwen2.5-Omni ThinkerPrompt -> generated token ids (streamed) and the states its Talker reads.

Token ids come one by one as they are produced; the Talker's thinker-space states are nodes/qwen2_5/payloads.py's.

Decoding as the Qwen3-Omni thinker node (nodes/common/generation_settings.py): greedy, or sampled with the run's
per-node seed, unset settings from generation_config.json, else Qwen's defaults; served by the batching engine
with every concurrent run. Stops after thinker_config.eos_token_id (<|im_end|>, 151645) or any eos id of
generation_config.json (the stop token is emitted), or after max_new_tokens.
`talker_prompt` comes right after the prefill, before the first token; `states` gives the state of generated
token g_j as soon as the step that fed g_j back has run (with token g_{j+1}); the last token has none.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from ..common.generation_settings import GenerationConfig
from ..qwen2_5.family import MODEL_TYPES, tiny_random_checkpoint
from ..qwen2_5.payloads import TalkerPrompt, ThinkerState
from ...runtime.checkpoint_config import check_budget
from ...runtime.errors import UserError
from ..qwen.payloads import ThinkerPrompt
from ..common.token_payloads import TokenId, TokenIds
from ...runtime.node import Node
from ...runtime.ports import Input, Output

if TYPE_CHECKING:
    from .batch_model import Qwen25Inputs


class Qwen25Thinker(Node):
    kind = "qwen2_5_thinker"
    needs_checkpoint = True
    model_types = MODEL_TYPES
    default_checkpoint = staticmethod(tiny_random_checkpoint)

    class Config(GenerationConfig):
        pass

    inputs = (Input("thinker_prompt", ThinkerPrompt, doc="Prompt embeddings and TMRoPE positions."),)
    outputs = (
        Output("tokens", TokenId, stream=True, doc="Each generated token id as soon as it is chosen."),
        Output("token_ids", TokenIds, doc="All generated ids, at the end."),
        Output("talker_prompt", TalkerPrompt, doc="The prompt's states for the Talker, after the prefill."),
        Output("states", ThinkerState, stream=True, doc="Each generated token's state, one step behind it."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..common.engine import BatchingEngine
        from ..common.generation_settings import sampling_defaults, stop_ids
        from ..qwen.config_agreement import check_thinker_inputs
        from ..qwen2_5.tmrope import TmropeIds

        from .batch_model import Qwen25BatchModel
        from .model import thinker_args
        from .weights import load_thinker

        thinker = checkpoint.section("thinker_config", "this node reads a Qwen2.5-Omni checkpoint")
        check_thinker_inputs(checkpoint.config)
        try:
            args = thinker_args(checkpoint.config)
        except ValueError as exc:
            raise UserError(f"{checkpoint.path / 'config.json'}: {exc}") from None
        check_budget(self.name, "max_new_tokens", self.config.max_new_tokens, args.max_positions,
                     "thinker_config.text_config.max_position_embeddings")
        self._device = device
        self._model = load_thinker(checkpoint, self.weights or "thinker.", self.dtype, device)
        self._stop_ids = stop_ids(checkpoint, thinker.get("eos_token_id", 151645))
        self._sampling_defaults = sampling_defaults(checkpoint)
        media = TmropeIds.from_hf_config(checkpoint.config)
        self._media_ids = (media.audio, media.image, media.video)
        self._engine = BatchingEngine(Qwen25BatchModel(self._model), self.config.max_batch)

    def sampling_params(self):
        from ..common.generation_settings import sampling_params

        return sampling_params(self.config, self._sampling_defaults)

    def stream(self, thinker_prompt: ThinkerPrompt) -> Iterator[tuple[str, Any]]:
        import torch

        from ..common.generation_settings import thinker_request
        from ...runtime.context import current_run

        from .batch_model import Qwen25Inputs

        run, params = current_run(), self.sampling_params()
        p, dtype = thinker_prompt, self._model.lm_head.weight.dtype
        inputs = Qwen25Inputs(embeds=p.embeds.to(self._device, dtype)[None],  # [1, S, C]
                              positions=p.positions.to(self._device)[:, None],  # [3, 1, S]
                              rope_delta=int(p.rope_delta))
        ids = p.input_ids.to(self._device)
        request = thinker_request(self.config, params, self._stop_ids, self._model.args.dim, p.embeds, ids,
                                  inputs, self._device)
        generated: list[int] = []
        for token in self._engine.submit(request):  # served together with the other runs on this node
            with torch.no_grad():  # plain tensors (not inference tensors) in the payloads
                if generated:  # the step that fed the previous token back has run
                    port, item = "states", ThinkerState(generated[-1], inputs.states[len(generated) - 1].clone())
                else:  # the prefill has run
                    port, item = "talker_prompt", self._talker_prompt(p, inputs)
            yield port, item
            generated.append(token)
            yield "tokens", TokenId(token)
            if run.cancelled.is_set():
                break
        yield "token_ids", TokenIds(tuple(generated))

    def _talker_prompt(self, p: ThinkerPrompt, inputs: Qwen25Inputs) -> TalkerPrompt:
        """H_0 + E_0, E_0 zeroed at the audio/image/video pads: [P, C]."""
        import torch

        hidden = torch.cat(inputs.prompt_hidden)  # [P, C]
        embeds = inputs.embeds[0]
        media = torch.isin(p.input_ids.to(embeds.device), torch.tensor(self._media_ids, device=embeds.device))
        states = hidden + embeds.masked_fill(media[:, None], 0)
        return TalkerPrompt(states=states, input_ids=p.input_ids.clone(), positions=p.positions.clone(),
                            rope_delta=int(p.rope_delta))
