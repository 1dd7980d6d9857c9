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
from ..common.media_placeholders import check_counts, placeholders, scatter, vision_item, vision_items
from ..common.mrope_positions import MediaTokenIds, audio_in_video_positions, rope_index
from ..qwen.payloads import MediaLayout, PromptTokens, ThinkerPrompt


def build_thinker_prompt(prompt: PromptTokens, audio: AudioEmbeddings | None, vision: VisionEmbeddings | None,
                         embed_table: torch.Tensor, ids: MediaTokenIds) -> ThinkerPrompt:
    where, media = placeholders(prompt, ids, "<|audio_pad|>/<|image_pad|>/<|video_pad|>")
    tokens = prompt.ids.tolist()
    audio_tokens = list(audio.tokens) if audio is not None else []
    items = vision_items(vision, ids.spatial_merge_size)
    check_counts(media, audio, audio_tokens, items)

    pieces: list[list[int]] = []
    prev, next_audio = 0, 0
    vision_rows: list[torch.Tensor] = []  # row indices into vision.embeddings, in sequence order
    video_grids, video_spg, video_aiv, image_grids = [], [], [], []
    for at, item in zip(where, media):
        pad = tokens[at]
        if item.kind == "audio":
            pieces += [tokens[prev:at], [pad] * audio_tokens[next_audio]]
            next_audio += 1
        else:
            offset, n, vi = vision_item(items, item)
            vision_rows.append(torch.arange(offset, offset + n))
            grid = tuple(vision.grids[vi])
            if item.kind == "image":
                image_grids.append(grid)
                pieces += [tokens[prev:at], [pad] * n]
            else:
                video_grids.append(grid)
                video_spg.append(float(vision.seconds_per_grid[vi]))
                video_aiv.append(item.audio_in_video)
                if not item.audio_in_video:
                    pieces += [tokens[prev:at], [pad] * n]
                else:
                    pieces += [tokens[prev:at], _audio_in_video_tokens(
                        tokens, at, grid, video_spg[-1], audio_tokens[next_audio], ids)]
                    next_audio += 1
        prev = at + 1
    pieces.append(tokens[prev:])
    input_ids = torch.tensor([t for p in pieces for t in p], dtype=torch.long)

    embeds = embed_table[input_ids.to(embed_table.device)]  # [S, C]
    if audio is not None and audio.embeddings.shape[0]:
        scatter(embeds, input_ids == ids.audio, audio.embeddings, "audio")
    visual_mask, deepstack = None, ()
    if vision_rows:
        rows = torch.cat(vision_rows).to(vision.embeddings.device)
        visual_mask = (input_ids == ids.image) | (input_ids == ids.video)
        scatter(embeds, visual_mask, vision.embeddings[rows], "vision")
        deepstack = tuple(level[rows].to(embed_table.dtype) for level in vision.deepstack)

    try:
        positions, delta = rope_index(input_ids, ids, audio_tokens=audio_tokens, image_grids=image_grids,
                                      video_grids=video_grids, video_seconds_per_grid=video_spg,
                                      video_audio_in_video=video_aiv)
    except ValueError as exc:
        raise UserError(f"TM-RoPE positions: {exc}") from None
    layout = MediaLayout(audio_tokens=tuple(audio_tokens), image_grids=tuple(tuple(g) for g in image_grids),
                         video_grids=tuple(tuple(g) for g in video_grids), video_seconds_per_grid=tuple(video_spg),
                         video_audio_in_video=tuple(video_aiv))
    return ThinkerPrompt(input_ids=input_ids, embeds=embeds, positions=positions, rope_delta=delta,
                         visual_mask=visual_mask, deepstack=deepstack, layout=layout)


def _audio_in_video_tokens(tokens: list[int], at: int, grid, spg: float, n_audio: int,
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
