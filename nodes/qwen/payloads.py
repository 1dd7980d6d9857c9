"""Payloads of the Qwen-Omni stages: the tokenised prompt, the Thinker prompt, the Talker context, codec frames.

Shape glossary: S prompt tokens, U user-turn tokens, D model width, G codebooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ...runtime.payloads import Payload, Waveform
from ..common.media_payloads import Image, MediaItem, Video

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PromptTokens(Payload):
    """A tokenised chat prompt with ONE placeholder token per media item (expanded later).

    ids: [S] int64. `media` lists the items in the order their placeholders appear.
    `audios`, `images`, `videos` hold the decoded media in that order (a used video audio track is in
    `audios` at the position the template put it).
    """

    ids: torch.Tensor
    media: tuple[MediaItem, ...] = ()
    audios: tuple[Waveform, ...] = ()
    images: tuple[Image, ...] = ()
    videos: tuple[Video, ...] = ()

    def to_json(self) -> Any:
        return {"ids": self.ids.tolist(), "media": [m.kind + (" (audio in video)" if m.audio_in_video else "")
                                                   for m in self.media]}


@dataclass(frozen=True)
class MediaLayout:
    """What 3D positions are laid out from, per media item of a prompt in prompt order: tokens per audio clip,
    the (t, h, w) patch grid per image and per video, and per video its seconds per temporal grid step and
    whether its audio track is interleaved with it (audio in video)."""

    audio_tokens: tuple[int, ...] = ()
    image_grids: tuple[tuple[int, int, int], ...] = ()
    video_grids: tuple[tuple[int, int, int], ...] = ()
    video_seconds_per_grid: tuple[float, ...] = ()
    video_audio_in_video: tuple[bool, ...] = ()

    @property
    def has_media(self) -> bool:
        return bool(self.audio_tokens or self.image_grids or self.video_grids)


@dataclass(frozen=True)
class ThinkerPrompt(Payload):
    """Everything the Thinker's prefill needs.

    input_ids: [S] with placeholders expanded; embeds: [S, D] after the multimodal scatter;
    positions: [3, S] TM-RoPE position ids (t, h, w); rope_delta: positions for decode step c are c + rope_delta;
    visual_mask: [S] bool, where deepstack[l]: [n_visual, D] is added after decoder layer l.
    """

    input_ids: torch.Tensor
    embeds: torch.Tensor
    positions: torch.Tensor
    rope_delta: int | float  # float when video seconds_per_grid is fractional
    visual_mask: torch.Tensor | None = None
    deepstack: tuple[torch.Tensor, ...] = ()
    layout: MediaLayout = MediaLayout()  # the media's sizes, which the Talker reuses for its positions

    def to_json(self) -> Any:
        return {"input_ids": self.input_ids.tolist(), "rope_delta": self.rope_delta}


@dataclass(frozen=True)
class TalkerContext(Payload):
    """What a speech decoder needs from the prompt (the user turns), independent of who writes the reply.

    ids: [U] thinker ids of the user-turn tokens (all user turns, with their <|im_start|>user ... <|im_end|>\\n
    wrappers); embeds: [U, D] the Thinker's layer-0 inputs there (word embeddings, encoder outputs at media
    pads); hidden: [U, D] the Thinker's `accept_hidden_layer` hidden states there, or None when the prompt has no
    media (only media positions use them); media_mask: [U] bool, True at audio/image/video pad positions;
    layout: the prompt's media sizes for 3D positions (as in ThinkerPrompt.layout).
    """

    ids: torch.Tensor
    embeds: torch.Tensor
    hidden: torch.Tensor | None
    media_mask: torch.Tensor
    layout: MediaLayout = MediaLayout()

    def to_json(self) -> Any:
        return {"user_tokens": int(self.ids.shape[0]), "media_tokens": int(self.media_mask.sum())}


@dataclass(frozen=True)
class FrameRequest(Payload):
    """The Talker's ask to the code predictor for frame `index`: its last normed hidden state [D] and the
    codebook-0 code it chose."""

    index: int
    hidden: torch.Tensor
    code0: int

    def to_json(self) -> Any:
        return {"index": self.index, "code0": self.code0}


@dataclass(frozen=True)
class CodecFrame(Payload):
    """All G codebook codes of one 80 ms codec frame (codebook 0 first)."""

    index: int
    codes: tuple[int, ...]

    def to_json(self) -> Any:
        return list(self.codes)

    @classmethod
    def join(cls, items: Sequence[CodecFrame]) -> CodecCodes:
        return CodecCodes(tuple(item.codes for item in items))


@dataclass(frozen=True)
class CodecCodes(Payload):
    """A whole utterance of codec codes, frames x codebooks."""

    frames: tuple[tuple[int, ...], ...]

    def to_json(self) -> Any:
        return [list(frame) for frame in self.frames]
