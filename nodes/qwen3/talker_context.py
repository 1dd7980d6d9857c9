"""The Talker's view of a prompt (a TalkerContext of its user turns), built by the Thinker after its prefill
or, for a prompt without media, by `text_context` from the prompt alone."""
from __future__ import annotations

from typing import Sequence

import torch

from ..qwen.payloads import MediaLayout, TalkerContext


def user_turn_mask(ids: torch.Tensor, im_start: int, user: int) -> torch.Tensor:
    """ids [S] -> [S] bool: tokens whose most recent <|im_start|> (itself included) is followed by `user`."""
    S = ids.shape[0]
    is_start = ids == im_start
    next_is_user = torch.zeros(S, dtype=torch.bool, device=ids.device)
    next_is_user[:-1] = ids[1:] == user
    idx = torch.arange(S, device=ids.device)
    last_start = torch.where(is_start, idx, torch.full_like(idx, -1)).cummax(0).values  # [S], -1 before any
    return (last_start >= 0) & next_is_user[last_start.clamp(min=0)]


def build_talker_context(ids: torch.Tensor, embeds: torch.Tensor, hidden: torch.Tensor | None,
                         media_ids: Sequence[int], im_start: int, user: int, layout: MediaLayout) -> TalkerContext:
    """A TalkerContext of the user turns of a prompt: ids [S], embeds/hidden [S, C] (layer 0 / layer k).

    `hidden` is kept only when the user turns hold media (only media positions read it).
    """
    keep = user_turn_mask(ids, im_start, user)
    user_ids = ids[keep]
    media = torch.isin(user_ids, torch.tensor(list(media_ids), device=ids.device))
    with torch.no_grad():  # plain tensors (not inference tensors) in the payload
        kept_hidden = hidden[keep].clone() if hidden is not None and bool(media.any()) else None
        return TalkerContext(ids=user_ids.clone(), embeds=embeds[keep].clone(), hidden=kept_hidden,
                             media_mask=media, layout=layout)
