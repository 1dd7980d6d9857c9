"""Decoding settings of a Thinker node (Qwen3-Omni's and Qwen2.5-Omni's): the config fields, the sampling
defaults from the checkpoint's generation_config.json, and the stop ids.

Sampling fields left unset take generation_config.json's values when it has them, else temperature 0.7,
top_k 20, top_p 0.8, repetition_penalty 1.0 (Qwen's recommended instruct settings).
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ...runtime.device import DTypeSetting
from ...runtime.node import NodeConfig

DEFAULT_SAMPLING = {"temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.0}


class GenerationConfig(NodeConfig):
    max_new_tokens: int = Field(256, ge=1, le=1_000_000,
                                description="Most tokens to generate (the stop token included).")
    greedy: bool = Field(False, description="Pick the most likely token instead of sampling.")
    temperature: float | None = Field(None, gt=0, description="Sampling temperature (unset: checkpoint or 0.7).")
    top_k: int | None = Field(None, ge=0, le=1_000_000,
                              description="Keep the k most likely tokens; 0 = all (unset: 20).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus probability mass (unset: 0.8).")
    repetition_penalty: float | None = Field(None, gt=0, description="Penalty on seen tokens (unset: 1.0).")
    dtype: DTypeSetting = Field("auto", description="Weights and activations dtype (auto: the checkpoint's on "
                                                    "CUDA, float32 on CPU).")
    max_batch: int = Field(16, ge=1, le=4096, description="Most concurrent runs decoded together (more wait "
                           "for a free place in the batch).")


def sampling_defaults(checkpoint: Any) -> dict[str, Any]:
    """DEFAULT_SAMPLING, overridden by the checkpoint's generation_config.json where it sets a value."""
    generation = checkpoint.json_file("generation_config.json") or {}
    return {k: generation[k] if generation.get(k) is not None else v for k, v in DEFAULT_SAMPLING.items()}


def sampling_params(config: GenerationConfig, defaults: dict[str, Any]):
    """The node's SamplingParams, each unset setting from `defaults`."""
    from .sampling import SamplingParams

    values = {k: getattr(config, k) if getattr(config, k) is not None else defaults[k] for k in DEFAULT_SAMPLING}
    return SamplingParams(greedy=config.greedy, **values)


def stop_ids(checkpoint: Any, end_of_turn: int) -> frozenset[int]:
    """`end_of_turn` and every eos id of the checkpoint's generation_config.json."""
    eos = (checkpoint.json_file("generation_config.json") or {}).get("eos_token_id")
    return frozenset({int(end_of_turn)} | set([] if eos is None else [eos] if isinstance(eos, int) else eos))


def thinker_request(config: GenerationConfig, params: Any, stop_ids: frozenset[int], width: int, embeds: Any,
                    prompt_ids: Any, state: Any, device: str) -> Any:
    """The calling run's GenerationRequest to a Thinker engine: the node's sampling `params`, budget and stop
    ids, the run's own generator (from its node seed) and cancellation. `embeds`: the prompt's [S, C]
    embeddings, checked against the model's `width`."""
    from .engine import GenerationRequest
    from .sampling import make_generator
    from ...runtime.context import current_run
    from ...runtime.errors import UserError

    if embeds.shape[-1] != width:
        raise UserError(f"the prompt embeddings have width {embeds.shape[-1]} but this Thinker's is {width} (the "
                        f"interleaver and the thinker use different checkpoints?)")
    run = current_run()
    generator = None if params.greedy else make_generator(run.node_seed(), device)
    return GenerationRequest(prompt_len=int(embeds.shape[0]), max_new_tokens=config.max_new_tokens, params=params,
                             generator=generator, stop_ids=frozenset(stop_ids), cancelled=run.cancelled,
                             prompt_ids=prompt_ids, state=state)
