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
from ...runtime.media_payloads import AudioEmbeddings, MediaItem, PromptTokens, ThinkerPrompt, VisionEmbeddings

from ..qwen2_5.tmrope import TmropeIds, audio_in_video, rope_index


def build_thinker_prompt(prompt: PromptTokens, audio: AudioEmbeddings | None, vision: VisionEmbeddings | None,
                         embed_table: torch.Tensor, ids: TmropeIds) -> ThinkerPrompt:
    tokens = prompt.ids.tolist()
    pad_kind = {ids.audio: "audio", ids.image: "image", ids.video: "video"}
    where = [i for i, t in enumerate(tokens) if t in pad_kind]
    found = [pad_kind[tokens[i]] for i in where]
    media = prompt.media or _inferred_media(found)
    if found != [m.kind for m in media]:
        raise UserError(f"the prompt's placeholder tokens ({_tally(found)}) do not match its media list "
                        f"({_tally([m.kind for m in media])}); a PromptTokens needs exactly "
                        f"one <|AUDIO|>/<|IMAGE|>/<|VIDEO|> (ids {ids.audio}/{ids.image}/{ids.video}) per media "
                        f"item, in order")
    audio_tokens = list(audio.tokens) if audio is not None else []
    vision_items = _vision_items(vision, ids.spatial_merge_size)
    _check_counts(media, audio, audio_tokens, vision_items)

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
        if item.index >= len(vision_items[item.kind]):
            raise UserError(f"{item.kind} item {item.index} has no vision embeddings "
                            f"({len(vision_items[item.kind])} {item.kind}(s) given)")
        offset, n, vi = vision_items[item.kind][item.index]
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
        _scatter(embeds, input_ids == ids.audio, audio.embeddings, "audio")
    if vision_rows:
        rows = torch.cat(vision_rows).to(vision.embeddings.device)
        _scatter(embeds, (input_ids == ids.image) | (input_ids == ids.video), vision.embeddings[rows], "vision")
    try:
        positions, delta = rope_index(input_ids, ids, audio_tokens=audio_tokens, image_grids=image_grids,
                                      video_grids=video_grids, video_seconds_per_grid=video_spg,
                                      video_audio_in_video=video_aiv)
    except ValueError as exc:
        raise UserError(f"TMRoPE positions: {exc}") from None
    return ThinkerPrompt(input_ids=input_ids, embeds=embeds, positions=positions, rope_delta=delta)


def _inferred_media(kinds: list[str]) -> tuple[MediaItem, ...]:
    """No media list: one item per placeholder, in order."""
    seen = {"audio": 0, "image": 0, "video": 0}
    out = []
    for k in kinds:
        out.append(MediaItem(k, seen[k]))
        seen[k] += 1
    return tuple(out)


def _tally(kinds: list[str]) -> str:
    return ", ".join(f"{kinds.count(k)} {k}" for k in ("audio", "image", "video") if k in kinds) or "none"


def _vision_items(vision: VisionEmbeddings | None, merge: int) -> dict[str, list[tuple[int, int, int]]]:
    """Per kind, (row offset, rows, item index) of each vision item, in the order given."""
    out: dict[str, list[tuple[int, int, int]]] = {"image": [], "video": []}
    if vision is None:
        return out
    offset = 0
    for i, (grid, kind) in enumerate(zip(vision.grids, vision.kinds)):
        if kind not in out:
            raise UserError(f"vision item {i} has kind '{kind}'; expected 'image' or 'video'")
        t, h, w = grid
        n = t * h * w // (merge * merge)
        out[kind].append((offset, n, i))
        offset += n
    if offset != vision.embeddings.shape[0]:
        raise UserError(f"the vision embeddings have {vision.embeddings.shape[0]} rows but their grids "
                        f"{[list(g) for g in vision.grids]} add up to {offset} merged tokens")
    return out


def _check_counts(media: tuple[MediaItem, ...], audio: AudioEmbeddings | None, audio_tokens: list[int],
                  vision_items: dict[str, list[tuple[int, int, int]]]) -> None:
    need = {"audio": sum(m.kind == "audio" or m.audio_in_video for m in media),
            "image": sum(m.kind == "image" for m in media), "video": sum(m.kind == "video" for m in media)}
    have = {"audio": len(audio_tokens), "image": len(vision_items["image"]), "video": len(vision_items["video"])}
    for kind in need:
        if need[kind] != have[kind]:
            raise UserError(f"the prompt has {need[kind]} {kind} item(s) (counting videos with audio_in_video "
                            f"as audio too) but {have[kind]} {kind} embedding(s) were given")
    if audio is not None and sum(audio_tokens) != audio.embeddings.shape[0]:
        raise UserError(f"audio embeddings have {audio.embeddings.shape[0]} rows but tokens {audio_tokens} "
                        f"add up to {sum(audio_tokens)}")


def _check_video_wrappers(tokens: list[int], at: int, ids: TmropeIds) -> None:
    before = tokens[at - 1] if at > 0 else None
    after = tokens[at + 1] if at + 1 < len(tokens) else None
    if (before, after) != (ids.vision_start, ids.vision_end):
        raise UserError(f"the video with audio_in_video at token {at} must be written "
                        f"<|vision_bos|><|VIDEO|><|vision_eos|> (ids {ids.vision_start}, {ids.video}, "
                        f"{ids.vision_end}); found neighbours {before} and {after}")


def _scatter(embeds: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, what: str) -> None:
    """embeds[mask] = rows, in order (in place)."""
    n = int(mask.sum())
    if n != rows.shape[0]:
        raise UserError(f"{what}: {rows.shape[0]} embedding rows for {n} placeholder positions")
    if rows.shape[-1] != embeds.shape[-1]:
        raise UserError(f"{what} embeddings have width {rows.shape[-1]} but the Thinker's is {embeds.shape[-1]} "
                        f"(encoder and Thinker from different checkpoints?)")
    embeds[mask.to(embeds.device)] = rows.to(embeds.device, embeds.dtype)
