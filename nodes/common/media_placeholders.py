"""What the Thinker-prompt interleavers share: a prompt's media placeholders matched to its media list, the
encoder outputs checked against them, each placeholder expanded to its item's tokens, and the encoder rows
scattered into the token embeddings.

Shapes: S0 prompt tokens, S expanded tokens, C width, n rows of one item. `ids` is a family's token-id table
(audio, image, video pad ids, spatial_merge_size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from ...runtime.errors import UserError
from .media_payloads import AudioEmbeddings, MediaItem, VisionEmbeddings

if TYPE_CHECKING:  # the prompt payload of the Qwen families; common/ needs only its ids and media list
    from ..qwen.payloads import PromptTokens

KINDS = ("audio", "image", "video")
# (prompt tokens, index of the video pad, grid, seconds per grid, audio tokens, ids) -> the pad's replacement
AudioInVideoTokens = Callable[[list[int], int, tuple[int, int, int], float, int, Any], list[int]]


@dataclass(frozen=True)
class ExpandedPrompt:
    """A prompt with every placeholder expanded and the encoder rows scattered into its embeddings."""

    input_ids: torch.Tensor                        # [S] int64
    embeds: torch.Tensor                           # [S, C]
    visual_mask: torch.Tensor | None               # [S] bool, image and video tokens; None without vision
    vision_rows: torch.Tensor | None               # rows of vision.embeddings in sequence order
    audio_tokens: list[int]                        # per clip, prompt order
    image_grids: list[tuple[int, int, int]]
    video_grids: list[tuple[int, int, int]]
    video_seconds_per_grid: list[float]
    video_audio_in_video: list[bool]


def expand_and_embed(prompt: PromptTokens, audio: AudioEmbeddings | None, vision: VisionEmbeddings | None,
                     embed_table: torch.Tensor, ids: Any, pad_names: str,
                     audio_in_video_tokens: AudioInVideoTokens) -> ExpandedPrompt:
    """Audio pad -> n pads of its clip, image/video pad -> t*h*w/m^2 pads, a video with audio_in_video ->
    `audio_in_video_tokens(...)` (the family's interleaving; its clip is the next one in the audio list); then
    the tokens embedded with `embed_table` [V, C] and the encoder rows put in their places."""
    tokens = prompt.ids.tolist()
    where, media = placeholders(prompt, ids, pad_names)
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
        pieces.append(audio_in_video_tokens(tokens, at, grid, video_spg[-1], audio_tokens[next_audio], ids))
        next_audio += 1
    pieces.append(tokens[prev:])
    input_ids = torch.tensor([t for p in pieces for t in p], dtype=torch.long)

    embeds = embed_table[input_ids.to(embed_table.device)]  # [S, C]
    if audio is not None and audio.embeddings.shape[0]:
        scatter(embeds, input_ids == ids.audio, audio.embeddings, "audio")
    visual_mask = rows = None
    if vision_rows:
        rows = torch.cat(vision_rows).to(vision.embeddings.device)
        visual_mask = (input_ids == ids.image) | (input_ids == ids.video)
        scatter(embeds, visual_mask, vision.embeddings[rows], "vision")
    return ExpandedPrompt(input_ids, embeds, visual_mask, rows, audio_tokens, image_grids, video_grids, video_spg,
                          video_aiv)


def placeholders(prompt: PromptTokens, ids: Any, pad_names: str) -> tuple[list[int], tuple[MediaItem, ...]]:
    """Placeholder indices in prompt.ids and the media item of each (inferred from the ids when the prompt has
    no media list). `pad_names` names the audio/image/video pads in the error, e.g. "<|AUDIO|>/<|IMAGE|>/..."."""
    pad_kind = {ids.audio: "audio", ids.image: "image", ids.video: "video"}
    tokens = prompt.ids.tolist()
    where = [i for i, t in enumerate(tokens) if t in pad_kind]
    found = [pad_kind[tokens[i]] for i in where]
    media = prompt.media or _inferred_media(found)
    if found != [m.kind for m in media]:
        raise UserError(f"the prompt's placeholder tokens ({_tally(found)}) do not match its media list "
                        f"({_tally([m.kind for m in media])}); a PromptTokens needs exactly one {pad_names} "
                        f"(ids {ids.audio}/{ids.image}/{ids.video}) per media item, in order")
    return where, media


def _inferred_media(kinds: list[str]) -> tuple[MediaItem, ...]:
    """No media list: one item per placeholder, in order."""
    seen = dict.fromkeys(KINDS, 0)
    out = []
    for k in kinds:
        out.append(MediaItem(k, seen[k]))
        seen[k] += 1
    return tuple(out)


def _tally(kinds: Sequence[str]) -> str:
    return ", ".join(f"{kinds.count(k)} {k}" for k in KINDS if k in kinds) or "none"


def vision_items(vision: VisionEmbeddings | None, merge: int) -> dict[str, list[tuple[int, int, int]]]:
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


def vision_item(items: dict[str, list[tuple[int, int, int]]], item: MediaItem) -> tuple[int, int, int]:
    """(row offset, rows, item index) of a prompt's image or video among the vision items."""
    if item.index >= len(items[item.kind]):
        raise UserError(f"{item.kind} item {item.index} has no vision embeddings "
                        f"({len(items[item.kind])} {item.kind}(s) given)")
    return items[item.kind][item.index]


def check_counts(media: Sequence[MediaItem], audio: AudioEmbeddings | None, audio_tokens: list[int],
                 items: dict[str, list[tuple[int, int, int]]]) -> None:
    """As many audio clips (videos with audio_in_video count too), images and videos given as the prompt has."""
    need = {"audio": sum(m.kind == "audio" or m.audio_in_video for m in media),
            "image": sum(m.kind == "image" for m in media), "video": sum(m.kind == "video" for m in media)}
    have = {"audio": len(audio_tokens), "image": len(items["image"]), "video": len(items["video"])}
    for kind in need:
        if need[kind] != have[kind]:
            raise UserError(f"the prompt has {need[kind]} {kind} item(s) (counting videos with audio_in_video "
                            f"as audio too) but {have[kind]} {kind} embedding(s) were given")
    if audio is not None and sum(audio_tokens) != audio.embeddings.shape[0]:
        raise UserError(f"audio embeddings have {audio.embeddings.shape[0]} rows but tokens {audio_tokens} "
                        f"add up to {sum(audio_tokens)}")


def scatter(embeds: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, what: str) -> None:
    """embeds[mask] = rows, in order (in place). embeds [S, C], mask [S] bool, rows [n, C]."""
    n = int(mask.sum())
    if n != rows.shape[0]:
        raise UserError(f"{what}: {rows.shape[0]} embedding rows for {n} placeholder positions")
    if rows.shape[-1] != embeds.shape[-1]:
        raise UserError(f"{what} embeddings have width {rows.shape[-1]} but the Thinker's is {embeds.shape[-1]} "
                        f"(encoder and Thinker from different checkpoints?)")
    embeds[mask.to(embeds.device)] = rows.to(embeds.device, embeds.dtype)
