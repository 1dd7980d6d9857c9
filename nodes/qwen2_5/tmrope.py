"""TMRoPE position ids of Qwen2.5-Omni: [3, S] (t, h, w) int64 positions of an expanded prompt, for the Thinker
and the Talker (reference/qwen2.5-omni.md section 4).

Shapes: S tokens, n tokens of one media item. `st` is the largest position of the last piece placed + 1:
- text (every bos/eos token included): st + arange on all 3 axes;
- audio pads of one clip: st + arange(n) on all 3 axes;
- image/video (grid t, h, w patches; merged grid h/m, w/m): t = st + long(k * seconds_per_grid * 25) for frame
  k (float32 product, truncated; images: 1 s per frame), h = st + row, w = st + col (raster order of the merged grid);
- audio in video (`<|vision_bos|><|audio_bos|>` block `<|audio_eos|><|vision_eos|>`): both bos tokens share one
  position, the video and audio positions both start right after it, and their tokens come in 2-second chunks,
  video chunk 0, audio chunk 0, video chunk 1, ... (`chunk_runs`); both eos tokens share the next position.
rope_delta = max(position) + 1 - S; a decode step at cache length c uses c + rope_delta on all 3 axes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


@dataclass(frozen=True)
class TmropeIds:
    """Special token ids and the time scale of one model (thinker_config or talker_config of config.json)."""

    audio: int = 151646
    image: int = 151655
    video: int = 151656
    audio_start: int = 151647
    audio_end: int = 151648
    vision_start: int = 151652
    vision_end: int = 151653
    position_id_per_seconds: int = 25
    seconds_per_chunk: float = 2.0
    spatial_merge_size: int = 2

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> TmropeIds:
        """From a thinker_config or talker_config dict (a full config.json dict uses its thinker_config).
        Pad ids are read as `*_token_index` (the released name) or `*_token_id`."""
        config = config.get("thinker_config", config)
        merge = config.get("spatial_merge_size", (config.get("vision_config") or {}).get("spatial_merge_size", 2))
        values = {}
        for ours in ("audio", "image", "video"):
            found = config.get(f"{ours}_token_index", config.get(f"{ours}_token_id"))
            if found is not None:
                values[ours] = int(found)
        for ours in ("audio_start", "audio_end", "vision_start", "vision_end"):
            if config.get(f"{ours}_token_id") is not None:
                values[ours] = int(config[f"{ours}_token_id"])
        for name in ("position_id_per_seconds", "seconds_per_chunk"):
            if config.get(name) is not None:
                values[name] = config[name]
        return cls(**values, spatial_merge_size=int(merge))

    @property
    def tokens_per_chunk(self) -> int:
        return int(self.position_id_per_seconds * self.seconds_per_chunk)


def vision_positions(start: int, grid: Sequence[int], seconds_per_grid: float, ids: TmropeIds) -> torch.Tensor:
    """[3, t*h*w/m^2] int64 positions of one image or video starting at `start`."""
    t, h, w = (int(g) for g in grid)
    gh, gw = h // ids.spatial_merge_size, w // ids.spatial_merge_size
    frame_t = (torch.arange(t) * torch.tensor(seconds_per_grid, dtype=torch.float32)
               * ids.position_id_per_seconds).long()
    tt = frame_t.view(t, 1, 1).expand(t, gh, gw)
    hh = torch.arange(gh).view(1, gh, 1).expand(t, gh, gw)
    ww = torch.arange(gw).view(1, 1, gw).expand(t, gh, gw)
    return torch.stack([tt, hh, ww]).reshape(3, -1) + start


def chunk_runs(t: Sequence[int], tokens_per_chunk: int, start: int) -> list[tuple[int, int]]:
    """Split t-sorted positions into runs [a, b): a new run begins at the first value at or past the next chunk
    boundary start + tokens_per_chunk * k (one boundary per value, so a jump over several chunks starts one run)."""
    runs, first, chunk = [], 0, 1
    for i, value in enumerate(t):
        if value - start >= chunk * tokens_per_chunk:
            runs.append((first, i))
            first, chunk = i, chunk + 1
    runs.append((first, len(t)))
    return runs


def audio_in_video(start: int, grid: Sequence[int], seconds_per_grid: float, n_audio: int,
                   ids: TmropeIds) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [3, nv + na] of a video's tokens and its audio's, interleaved chunk by chunk, and is_video
    [nv + na] bool in that order. Both streams start at `start` (the position after the shared bos)."""
    video = vision_positions(start, grid, seconds_per_grid, ids)
    audio = (torch.arange(n_audio) + start).expand(3, n_audio)
    video_runs = chunk_runs(video[0].tolist(), ids.tokens_per_chunk, start)
    audio_runs = chunk_runs(audio[0].tolist(), ids.tokens_per_chunk, start)
    pieces, kinds = [], []
    for j in range(max(len(video_runs), len(audio_runs))):
        for runs, source, is_video in ((video_runs, video, True), (audio_runs, audio, False)):
            if j < len(runs):
                a, b = runs[j]
                pieces.append(source[:, a:b])
                kinds += [is_video] * (b - a)
    return torch.cat(pieces, dim=1), torch.tensor(kinds, dtype=torch.bool)


def rope_index(input_ids: torch.Tensor, ids: TmropeIds, *, audio_tokens: Sequence[int] = (),
               image_grids: Sequence[Sequence[int]] = (), video_grids: Sequence[Sequence[int]] = (),
               video_seconds_per_grid: Sequence[float] = (), video_audio_in_video: Sequence[bool] = (),
               ) -> tuple[torch.Tensor, int]:
    """input_ids [S] with placeholders expanded -> (positions [3, S] int64, rope_delta).

    Media appear in `input_ids` as runs of pad tokens; each kind's lists are consumed in order. A video with
    audio_in_video takes the next audio clip too and must be wrapped `<|vision_bos|><|audio_bos|>` ...
    `<|audio_eos|><|vision_eos|>`. Raises ValueError when the ids and the media sizes disagree.
    """
    tokens = input_ids.tolist()
    S = len(tokens)
    spg = list(video_seconds_per_grid) or [1.0] * len(video_grids)
    aiv = list(video_audio_in_video) or [False] * len(video_grids)
    pieces: list[torch.Tensor] = []
    counters = {"audio": 0, "image": 0, "video": 0}
    i = text_start = 0

    def st() -> int:
        return int(pieces[-1].max()) + 1 if pieces else 0

    def take(kind: str, available: Sequence) -> int:
        n = counters[kind]
        if n >= len(available):
            raise ValueError(f"the prompt has more {kind} placeholders than {kind} items ({len(available)}), "
                             f"the first extra one at token {i}")
        counters[kind] += 1
        return n

    def place_text(end: int) -> None:
        if end > text_start:
            pieces.append((torch.arange(end - text_start) + st()).expand(3, -1))

    def place_shared(token_ids: Sequence[int], at: int, what: str) -> None:
        """Two wrapper tokens at `at` that share one position."""
        if tokens[at:at + 2] != list(token_ids):
            raise ValueError(f"the video with its audio at token {i} must be wrapped in {what} "
                             f"(ids {token_ids[0]}, {token_ids[1]}); found {tokens[at:at + 2]}")
        pieces.append(torch.full((3, 2), st(), dtype=torch.long))

    while i < S:
        tok = tokens[i]
        if tok not in (ids.audio, ids.image, ids.video):
            i += 1
            continue
        if tok == ids.audio:
            place_text(i)
            n = audio_tokens[take("audio", audio_tokens)]
            pos, expect = (torch.arange(n) + st()).expand(3, n), [ids.audio] * n
        elif tok == ids.image:
            place_text(i)
            pos = vision_positions(st(), image_grids[take("image", image_grids)], 1.0, ids)  # frames 1 s apart
            expect = [ids.image] * pos.shape[1]
        else:
            v = take("video", video_grids)
            if aiv[v]:
                place_text(i - 2)
                place_shared((ids.vision_start, ids.audio_start), i - 2, "<|vision_bos|><|audio_bos|>")
                n_audio = audio_tokens[take("audio", audio_tokens)]
                pos, is_video = audio_in_video(st(), video_grids[v], spg[v], n_audio, ids)
                expect = [ids.video if x else ids.audio for x in is_video.tolist()]
            else:
                place_text(i)
                pos = vision_positions(st(), video_grids[v], spg[v], ids)
                expect = [ids.video] * pos.shape[1]
        got = tokens[i:i + len(expect)]
        if got != expect:
            raise ValueError(f"media tokens at {i}..{i + len(expect) - 1} do not match the media sizes given "
                             f"({len(expect)} tokens expected, audio and video interleaved in 2-second chunks "
                             f"when a video carries its audio)")
        pieces.append(pos)
        i = text_start = i + len(expect)
        if tok == ids.video and aiv[v]:
            place_shared((ids.audio_end, ids.vision_end), i, "<|audio_eos|><|vision_eos|>")
            i = text_start = i + 2
    place_text(S)
    for kind, given in (("audio", audio_tokens), ("image", image_grids), ("video", video_grids)):
        if counters[kind] != len(given):
            raise ValueError(f"{len(given)} {kind} item(s) given but the prompt has {counters[kind]}")
    positions = torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long)
    delta = int(positions.max()) + 1 - S if S else 0
    return positions, delta
