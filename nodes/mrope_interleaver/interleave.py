"""Build a ThinkerPrompt: expand each media placeholder, embed the tokens, scatter the encoder outputs, and
compute the TM-RoPE positions.

Shapes: S0 prompt tokens (one placeholder per media item), S expanded tokens, C width, n tokens of one item.
Expansion: audio pad -> n audio pads of that clip; image/video pad -> t*h*w/m^2 pads; a video with
audio_in_video: `<|vision_start|><|video_pad|><|vision_end|>` -> `<|vision_start|><|audio_start|>` + video and
audio pads merged by time + `<|audio_end|><|vision_end|>` (the clip is the next one in the audio list).
"""
from __future__ import annotations

import torch

from ...runtime.errors import UserError
from ..common.media_payloads import AudioEmbeddings, VisionEmbeddings
from ..common.media_placeholders import expand_and_embed
from ..common.mrope_positions import MediaTokenIds, audio_in_video_positions, rope_index
from ..qwen.payloads import MediaLayout, PromptTokens, ThinkerPrompt


def build_thinker_prompt(prompt: PromptTokens, audio: AudioEmbeddings | None, vision: VisionEmbeddings | None,
                         embed_table: torch.Tensor, ids: MediaTokenIds) -> ThinkerPrompt:
    e = expand_and_embed(prompt, audio, vision, embed_table, ids, "<|audio_pad|>/<|image_pad|>/<|video_pad|>",
                         _audio_in_video_tokens)
    deepstack = () if e.vision_rows is None else tuple(level[e.vision_rows].to(embed_table.dtype)
                                                       for level in vision.deepstack)
    try:
        positions, delta = rope_index(e.input_ids, ids, audio_tokens=e.audio_tokens, image_grids=e.image_grids,
                                      video_grids=e.video_grids, video_seconds_per_grid=e.video_seconds_per_grid,
                                      video_audio_in_video=e.video_audio_in_video)
    except ValueError as exc:
        raise UserError(f"TM-RoPE positions: {exc}") from None
    layout = MediaLayout(audio_tokens=tuple(e.audio_tokens), image_grids=tuple(e.image_grids),
                         video_grids=tuple(e.video_grids), video_seconds_per_grid=tuple(e.video_seconds_per_grid),
                         video_audio_in_video=tuple(e.video_audio_in_video))
    return ThinkerPrompt(input_ids=e.input_ids, embeds=e.embeds, positions=positions, rope_delta=delta,
                         visual_mask=e.visual_mask, deepstack=deepstack, layout=layout)


def _audio_in_video_tokens(tokens: list[int], at: int, grid: tuple[int, int, int], spg: float, n_audio: int,
                           ids: MediaTokenIds) -> list[int]:
    """Replacement for the video pad at `at`: [audio_start] + merged pads + [audio_end] inside the vision
    wrappers (or only the merged pads if the prompt already wraps the pad in audio_start/audio_end)."""
    _, is_video = audio_in_video_positions(0.0, grid, spg, n_audio, ids)
    merged = [ids.video if v else ids.audio for v in is_video.tolist()]
    before = tokens[at - 1] if at > 0 else None
    after = tokens[at + 1] if at + 1 < len(tokens) else None
    if before == ids.vision_start and after == ids.vision_end:
        return [ids.audio_start] + merged + [ids.audio_end]
    if (before == ids.audio_start and after == ids.audio_end and at >= 2 and tokens[at - 2] == ids.vision_start
            and at + 2 < len(tokens) and tokens[at + 2] == ids.vision_end):
        return merged
    raise UserError(f"the video with audio_in_video at token {at} must be written "
                    f"<|vision_start|><|video_pad|><|vision_end|> (ids {ids.vision_start}, {ids.video}, "
                    f"{ids.vision_end}); found neighbours {before} and {after}")
