"""TM-RoPE position ids of Qwen3-Omni: [3, S] (t, h, w) float positions for an expanded prompt.

Shapes: S tokens, n tokens of one media item. Rules (reference/qwen3-omni.md section 4):
- text (including every start/end token): st + arange on all 3 axes, st = max(previous positions) + 1;
- audio pads of one clip: st + arange(n) on all 3 axes;
- image/video (grid t, h, w patches; merged grid h/m, w/m): t = st + k * seconds_per_grid * pos_per_second
  (seconds_per_grid is 1 for images), h = st + row, w = st + col (raster order of the merged grid);
- audio in video: video and audio positions both start at the same st and their tokens are merged by
  the t axis (a video token goes first when its t <= the next audio token's t).
rope_delta = max(position) + 1 - S; a decode step at cache length c uses c + rope_delta on all 3 axes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


@dataclass(frozen=True)
class MediaTokenIds:
    """Special token ids and the seconds-to-position scale of one model (read from its checkpoint by
    nodes/qwen/special_tokens.py)."""

    audio: int
    image: int
    video: int
    audio_start: int
    audio_end: int
    vision_start: int
    vision_end: int
    position_id_per_seconds: float = 13.0
    spatial_merge_size: int = 2


def vision_positions(start: float, grid: Sequence[int], seconds_per_grid: float, ids: Any,
                     truncate: bool = False) -> torch.Tensor:
    """[3, t*h*w/m^2] positions of one image/video starting at `start`, float32; int64 with the frame times
    truncated when `truncate` (Qwen2.5-Omni). `ids` gives position_id_per_seconds and spatial_merge_size."""
    t, h, w = (int(g) for g in grid)
    gh, gw = h // ids.spatial_merge_size, w // ids.spatial_merge_size
    dtype = torch.long if truncate else torch.float32
    frame_t = torch.arange(t) * torch.tensor(seconds_per_grid, dtype=torch.float32) * ids.position_id_per_seconds
    tt = frame_t.to(dtype).view(t, 1, 1).expand(t, gh, gw)
    hh = torch.arange(gh, dtype=dtype).view(1, gh, 1).expand(t, gh, gw)
    ww = torch.arange(gw, dtype=dtype).view(1, 1, gw).expand(t, gh, gw)
    return torch.stack([tt, hh, ww]).reshape(3, -1) + start


class MediaCounter:
    """The media lists of a prompt consumed in order while its pads are placed (rope_index)."""

    def __init__(self, **available: Sequence):
        self.available = available
        self.used = dict.fromkeys(available, 0)

    def take(self, kind: str, at: int) -> int:
        """The index of the next `kind` item, for the placeholder at token `at`."""
        n, have = self.used[kind], len(self.available[kind])
        if n >= have:
            raise ValueError(f"the prompt has more {kind} placeholders than {kind} items ({have}), "
                             f"the first extra one at token {at}")
        self.used[kind] += 1
        return n

    def check_all_taken(self) -> None:
        for kind, given in self.available.items():
            if self.used[kind] != len(given):
                raise ValueError(f"{len(given)} {kind} item(s) given but the prompt has {self.used[kind]}")


def audio_in_video_order(video_t: torch.Tensor, audio_t: torch.Tensor) -> torch.Tensor:
    """Merge order of two t-sorted streams (video first on ties): indices into cat([video, audio])."""
    keys = torch.cat([video_t, audio_t])
    return keys.argsort(stable=True)


def audio_in_video_positions(start: float, grid: Sequence[int], seconds_per_grid: float, n_audio: int,
                             ids: MediaTokenIds) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [3, nv + na] of the merged video/audio tokens, and is_video [nv + na] bool in that order."""
    video = vision_positions(start, grid, seconds_per_grid, ids)
    audio = (torch.arange(n_audio, dtype=torch.float32) + start).expand(3, n_audio)
    order = audio_in_video_order(video[0], audio[0])
    is_video = order < video.shape[1]
    return torch.cat([video, audio], dim=1)[:, order], is_video


def last_run_start(is_video: torch.Tensor) -> int:
    """Where the merged tokens' final run of one kind starts: the next positions follow that run's largest
    position, not the largest of the whole video (the reference's rope index takes the maximum of the last
    piece it appended; the tail left when the other stream has ended is one piece)."""
    other = (is_video != is_video[-1]).nonzero()
    return int(other[-1]) + 1 if len(other) else 0


def rope_index(input_ids: torch.Tensor, ids: MediaTokenIds, *, audio_tokens: Sequence[int] = (),
               image_grids: Sequence[Sequence[int]] = (), video_grids: Sequence[Sequence[int]] = (),
               video_seconds_per_grid: Sequence[float] = (), video_audio_in_video: Sequence[bool] = (),
               ) -> tuple[torch.Tensor, float]:
    """input_ids [S] with placeholders expanded -> (positions [3, S] float32, rope_delta).

    Media appear in `input_ids` as runs of pad tokens; each kind's lists are consumed in order. A video with
    audio_in_video takes the next audio clip too (its pads are merged with the video's, see audio_in_video_order).
    rope_delta: generated token k sits at S + k + rope_delta, one past the last prompt position (as transformers'
    generate continues; after an audio-in-video block that can be below the largest position, see last_run_start).
    """
    ids_list = input_ids.tolist()
    S = len(ids_list)
    spg = list(video_seconds_per_grid) or [1.0] * len(video_grids)
    aiv = list(video_audio_in_video) or [False] * len(video_grids)
    pieces: list[torch.Tensor] = []
    st = 0.0
    i = text_start = 0
    media = MediaCounter(audio=audio_tokens, image=image_grids, video=video_grids)

    def flush_text(end: int) -> None:
        nonlocal st
        if end > text_start:
            pieces.append((torch.arange(end - text_start, dtype=torch.float32) + st).expand(3, -1))
            st = float(pieces[-1].max()) + 1

    while i < S:
        tok = ids_list[i]
        if tok not in (ids.audio, ids.image, ids.video):
            i += 1
            continue
        flush_text(i)
        tail = 0  # the next positions follow this one's largest: pos[:, tail:] (see last_run_start)
        if tok == ids.audio:
            n = audio_tokens[media.take("audio", i)]
            pos, expect = (torch.arange(n, dtype=torch.float32) + st).expand(3, n), [ids.audio] * n
        elif tok == ids.image:
            grid = image_grids[media.take("image", i)]
            pos = vision_positions(st, grid, 1.0, ids)  # image frames: pos_per_second apart
            expect = [ids.image] * pos.shape[1]
        else:
            v = media.take("video", i)
            if aiv[v]:
                n_audio = audio_tokens[media.take("audio", i)]
                pos, is_video = audio_in_video_positions(st, video_grids[v], spg[v], n_audio, ids)
                expect = [ids.video if x else ids.audio for x in is_video.tolist()]
                tail = last_run_start(is_video)
            else:
                pos = vision_positions(st, video_grids[v], spg[v], ids)
                expect = [ids.video] * pos.shape[1]
        got = ids_list[i:i + len(expect)]
        if got != expect:
            raise ValueError(f"media tokens at {i}..{i + len(expect) - 1} do not match the media sizes given "
                             f"({len(expect)} tokens expected, in the audio/video interleaving when merged)")
        pieces.append(pos)
        st = float(pos[:, tail:].max()) + 1
        i = text_start = i + len(expect)
    flush_text(S)
    media.check_all_taken()
    positions = torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0)
    delta = (float(positions[:, -1].max()) + 1 - S) if S else 0.0
    return positions, (int(delta) if delta == int(delta) else delta)
