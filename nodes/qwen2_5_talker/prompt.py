"""The Talker's prefill (reference qwen2.5-omni.md section 6.2, the intended path with the mask): the prompt's
states, then the speaker's bos embedding and the first reply state, with the codec pad and bos embeddings added
at those last two positions; TMRoPE positions of the prompt, then two text positions continuing them.

Shapes: P prompt positions, E Thinker width.
"""
from __future__ import annotations

import torch

from ...runtime.errors import UserError

from ..qwen2_5.payloads import TalkerPrompt, ThinkerState

from .model import Talker


def check_prompt(prompt: TalkerPrompt, width: int) -> None:
    """A TalkerPrompt this Talker can read (`width`: talker_config.embedding_size), else a UserError saying
    which field is off."""
    P = prompt.states.shape[0] if prompt.states.dim() == 2 else -1
    if P < 1 or prompt.states.shape[1] != width:
        raise UserError(f"talker_prompt.states has shape {list(prompt.states.shape)}; this Talker takes [P, {width}] "
                        f"(talker_config.embedding_size, the Thinker's width), P >= 1")
    if tuple(prompt.positions.shape) != (3, P) or tuple(prompt.input_ids.shape) != (P,):
        raise UserError(f"talker_prompt: positions {list(prompt.positions.shape)} and input_ids "
                        f"{list(prompt.input_ids.shape)} must be [3, {P}] and [{P}] (one per prompt state)")


def check_state(state: ThinkerState, index: int, width: int) -> torch.Tensor:
    """state's tensor [E], or a UserError naming the item."""
    if tuple(state.state.shape) != (width,):
        raise UserError(f"states item {index} (token {state.token_id}) has a state of shape {list(state.state.shape)}; "
                        f"this Talker takes [{width}] (talker_config.embedding_size)")
    return state.state


def prefill_inputs(model: Talker, prompt: TalkerPrompt, speaker: torch.Tensor,
                   first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """speaker [E] (Thinker embedding of the speaker's bos_token), first [E] (reply_0) -> inputs [1, P + 2, E],
    positions [3, 1, P + 2]."""
    ids, P = model.args.ids, prompt.states.shape[0]
    dtype, device = model.embed_tokens.weight.dtype, model.embed_tokens.weight.device
    codec = model.embed_tokens(torch.tensor([ids.codec_pad, ids.codec_bos], device=device))  # [2, E]
    tail = torch.stack([speaker.to(device, dtype), first.to(device, dtype)]) + codec
    inputs = torch.cat([prompt.states.to(device, dtype), tail])[None]
    text = (P + prompt.rope_delta + torch.arange(2, device=device)).expand(3, 2)
    positions = torch.cat([prompt.positions.to(device), text], dim=1)[:, None]
    return inputs, positions


def step_position(prompt: TalkerPrompt, step: int) -> int:
    """The rope position of decode step `step` >= 1 (the cache holds P + 1 + step positions before it)."""
    return prompt.states.shape[0] + 1 + step + prompt.rope_delta
