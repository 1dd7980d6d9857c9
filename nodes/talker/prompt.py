"""The Talker's prompt: the user turns, then nine assistant positions (text stream + codec stream), and the
text embedding of each later reply token (reference/qwen3-omni.md section 6).

Shapes: U user tokens, C talker width, Ct Thinker width, P = U + 9 prompt positions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...runtime.errors import UserError
from ..common.mrope_positions import MediaTokenIds, rope_index
from ..qwen.payloads import TalkerContext

from .model import Talker


@dataclass(frozen=True)
class TalkerIds:
    """Special ids: Thinker-vocabulary text ids and codec-vocabulary control ids."""

    im_start: int
    assistant: int
    newline: int
    tts_pad: int
    tts_bos: int
    tts_eos: int
    codec_pad: int
    codec_bos: int
    codec_eos: int
    codec_nothink: int
    codec_think_bos: int
    codec_think_eos: int

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> TalkerIds:
        """From a whole config.json dict: text ids at its top level, codec ids in its talker_config."""
        from ..qwen.special_tokens import NEWLINE, token_id

        t = config.get("talker_config", {})
        top = dict(im_start="im_start_token_id", assistant="assistant_token_id", tts_pad="tts_pad_token_id",
                   tts_bos="tts_bos_token_id", tts_eos="tts_eos_token_id")
        codec = dict(codec_pad="codec_pad_id", codec_bos="codec_bos_id", codec_eos="codec_eos_token_id",
                     codec_nothink="codec_nothink_id", codec_think_bos="codec_think_bos_id",
                     codec_think_eos="codec_think_eos_id")
        return cls(newline=NEWLINE, **{ours: token_id(config, name) for ours, name in top.items()},
                   **{ours: token_id(t, name) for ours, name in codec.items()})


def check_text_ids(ids: list[int], vocab: int) -> None:
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise UserError(f"text token id(s) {bad[:5]} are outside the Thinker vocabulary (0..{vocab - 1})")


class TextEmbedder:
    """Thinker-vocabulary ids -> text_projection(embed_tokens(ids)) [n, C]."""

    def __init__(self, model: Talker, table: torch.Tensor):
        self.model, self.table = model, table

    def __call__(self, ids: list[int]) -> torch.Tensor:
        check_text_ids(ids, self.table.shape[0])
        return self.model.text_projection(self.table[torch.tensor(ids, device=self.table.device)])


def talker_prompt(model: Talker, text: TextEmbedder, ctx: TalkerContext, first_token: int, speaker: int,
                  ids: TalkerIds, media: MediaTokenIds) -> tuple[torch.Tensor, torch.Tensor, float]:
    """-> (embeds [1, P, C], positions [3, 1, P], rope_delta): [user part ; 9 assistant positions]."""
    dev, dtype = model.codec_head.weight.device, model.codec_head.weight.dtype
    user = model.text_projection(ctx.embeds.to(dev, dtype))  # [U, C]
    mask = ctx.media_mask.to(dev)
    if bool(mask.any()):
        if ctx.hidden is None:
            raise UserError("the talker context has media tokens but no Thinker hidden states (hidden=None): "
                            "feed talker.context from the thinker's `talker_context` output")
        user[mask] = model.hidden_projection(ctx.hidden.to(dev, dtype)[mask])
    pad, bos = text([ids.tts_pad, ids.tts_bos]).unbind(0)
    head = text([ids.im_start, ids.assistant, ids.newline])  # [3, C]
    text_stream = torch.cat([head, pad.expand(4, -1), bos[None], text([first_token])])  # [9, C]
    codec_ids = torch.tensor([ids.codec_nothink, ids.codec_think_bos, ids.codec_think_eos, speaker, ids.codec_pad,
                              ids.codec_bos], device=dev)
    codec_stream = torch.cat([torch.zeros(3, user.shape[1], dtype=dtype, device=dev), model.codec_embedding(codec_ids)])
    embeds = torch.cat([user, text_stream + codec_stream])[None]

    x = ctx.layout
    input_ids = torch.cat([ctx.ids.cpu(), torch.full((9,), ids.tts_pad, dtype=torch.long)])
    n_videos = len(x.video_grids)
    media_args = dict(audio_tokens=x.audio_tokens, image_grids=x.image_grids, video_grids=x.video_grids,
                      video_seconds_per_grid=x.video_seconds_per_grid)
    try:  # use_audio_in_video is not forwarded to the reference talker: videos count as without audio
        positions, delta = rope_index(input_ids, media, video_audio_in_video=[False] * n_videos, **media_args)
    except ValueError:
        # The reference cannot lay out a video's interleaved audio without the flag; we use the layout the
        # Thinker used (documented deviation: the reference has no defined behaviour here).
        flags = list(x.video_audio_in_video or [False] * n_videos)
        try:
            positions, delta = rope_index(input_ids, media, video_audio_in_video=flags, **media_args)
        except ValueError as exc:
            raise UserError(f"talker positions of the user turns: {exc}") from None
    return embeds, positions.to(dev)[:, None], delta
