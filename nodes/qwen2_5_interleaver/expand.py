"""Build a Qwen2.5-Omni ThinkerPrompt: expand each media placeholder, embed the tokens, scatter the encoder
outputs, and compute the TMRoPE positions (nodes/qwen2_5/tmrope.py).

Shapes: S0 prompt tokens (one placeholder per media item), S expanded tokens, C width, n tokens of one item.
Expansion: audio pad -> n pads of that clip; image/video pad -> t*h*w/m^2 pads; a video with audio_in_video:
`<|vision_bos|><|VIDEO|><|vision_eos|>` -> `<|vision_bos|><|audio_bos|>` + video and audio pads in 2-second
chunks + `<|audio_eos|><|vision_eos|>` (the clip is the next one in the audio list).
"""
from __future__ import annotations

import torch

from ...runtime.errors import UserError
from ..common.media_payloads import AudioEmbeddings, VisionEmbeddings
from ..common.media_placeholders import expand_and_embed
from ..qwen.payloads import PromptTokens, ThinkerPrompt
from ..qwen2_5.tmrope import TmropeIds, audio_in_video, rope_index


def build_thinker_prompt(prompt: PromptTokens, audio: AudioEmbeddings | None, vision: VisionEmbeddings | None,
                         embed_table: torch.Tensor, ids: TmropeIds) -> ThinkerPrompt:
    e = expand_and_embed(prompt, audio, vision, embed_table, ids, "<|AUDIO|>/<|IMAGE|>/<|VIDEO|>",
                         _audio_in_video_tokens)
    try:
        positions, delta = rope_index(e.input_ids, ids, audio_tokens=e.audio_tokens, image_grids=e.image_grids,
                                      video_grids=e.video_grids, video_seconds_per_grid=e.video_seconds_per_grid,
                                      video_audio_in_video=e.video_audio_in_video)
    except ValueError as exc:
        raise UserError(f"TMRoPE positions: {exc}") from None
    return ThinkerPrompt(input_ids=e.input_ids, embeds=e.embeds, positions=positions, rope_delta=delta)


def _audio_in_video_tokens(tokens: list[int], at: int, grid: tuple[int, int, int], spg: float, n_audio: int,
                           ids: TmropeIds) -> list[int]:
    """Replacement for the video pad at `at` (inside <|vision_bos|> ... <|vision_eos|>): <|audio_bos|>, the
    video and audio pads in 2-second chunks, <|audio_eos|>."""
    _check_video_wrappers(tokens, at, ids)
    _, is_video = audio_in_video(0, grid, spg, n_audio, ids)
    return [ids.audio_start] + [ids.video if v else ids.audio for v in is_video.tolist()] + [ids.audio_end]


def _check_video_wrappers(tokens: list[int], at: int, ids: TmropeIds) -> None:
    before = tokens[at - 1] if at > 0 else None
    after = tokens[at + 1] if at + 1 < len(tokens) else None
    if (before, after) != (ids.vision_start, ids.vision_end):
        raise UserError(f"the video with audio_in_video at token {at} must be written "
                        f"<|vision_bos|><|VIDEO|><|vision_eos|> (ids {ids.vision_start}, {ids.video}, "
                        f"{ids.vision_end}); found neighbours {before} and {after}")
