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
from ..common.media_placeholders import check_counts, placeholders, scatter, vision_item, vision_items
from ..qwen.payloads import PromptTokens, ThinkerPrompt

from ..qwen2_5.tmrope import TmropeIds, audio_in_video, rope_index


def build_thinker_prompt(prompt: PromptTokens, audio: AudioEmbeddings | None, vision: VisionEmbeddings | None,
                         embed_table: torch.Tensor, ids: TmropeIds) -> ThinkerPrompt:
    tokens = prompt.ids.tolist()
    where, media = placeholders(prompt, ids, "<|AUDIO|>/<|IMAGE|>/<|VIDEO|>")
    audio_tokens = list(audio.tokens) if audio is not None else []
    items = vision_items(vision, ids.spatial_merge_size)
    check_counts(media, audio, audio_tokens, items)

    pieces: list[list[int]] = []
    prev, next_audio = 0, 0
    vision_rows: list[torch.Tensor] = []  # row indices into vision.embeddings, in sequence order
    image_grids, video_grids, video_spg, video_aiv = [], [], [], []
    for at, item in zip(where, media):
        pieces.append(tokens[prev:at])
        prev = at + 1
        if item.kind == "audio":
            pieces.append([ids.audio] * audio_tokens[next_audio])
            next_audio += 1
            continue
        offset, n, vi = vision_item(items, item)
        vision_rows.append(torch.arange(offset, offset + n))
        grid = tuple(vision.grids[vi])
        if item.kind == "image":
            image_grids.append(grid)
            pieces.append([ids.image] * n)
            continue
        video_grids.append(grid)
        video_spg.append(float(vision.seconds_per_grid[vi]))
        video_aiv.append(item.audio_in_video)
        if not item.audio_in_video:
            pieces.append([ids.video] * n)
            continue
        _check_video_wrappers(tokens, at, ids)
        _, is_video = audio_in_video(0, grid, video_spg[-1], audio_tokens[next_audio], ids)
        pieces.append([ids.audio_start] + [ids.video if v else ids.audio for v in is_video.tolist()]
                      + [ids.audio_end])
        next_audio += 1
    pieces.append(tokens[prev:])
    input_ids = torch.tensor([t for p in pieces for t in p], dtype=torch.long)

    embeds = embed_table[input_ids.to(embed_table.device)]  # [S, C]
    if audio is not None and audio.embeddings.shape[0]:
        scatter(embeds, input_ids == ids.audio, audio.embeddings, "audio")
    if vision_rows:
        rows = torch.cat(vision_rows).to(vision.embeddings.device)
        scatter(embeds, (input_ids == ids.image) | (input_ids == ids.video), vision.embeddings[rows], "vision")
    try:
        positions, delta = rope_index(input_ids, ids, audio_tokens=audio_tokens, image_grids=image_grids,
                                      video_grids=video_grids, video_seconds_per_grid=video_spg,
                                      video_audio_in_video=video_aiv)
    except ValueError as exc:
        raise UserError(f"TMRoPE positions: {exc}") from None
    return ThinkerPrompt(input_ids=input_ids, embeds=embeds, positions=positions, rope_delta=delta)


def _check_video_wrappers(tokens: list[int], at: int, ids: TmropeIds) -> None:
    before = tokens[at - 1] if at > 0 else None
    after = tokens[at + 1] if at + 1 < len(tokens) else None
    if (before, after) != (ids.vision_start, ids.vision_end):
        raise UserError(f"the video with audio_in_video at token {at} must be written "
                        f"<|vision_bos|><|VIDEO|><|vision_eos|> (ids {ids.vision_start}, {ids.video}, "
                        f"{ids.vision_end}); found neighbours {before} and {after}")
