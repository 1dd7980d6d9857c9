"""Payloads of the model stages (family-agnostic: Qwen3-Omni and Qwen2.5-Omni nodes share them).

Shape glossary: S prompt tokens, D model width, T mel frames, N tokens of one modality, L deepstack levels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Sequence

from .payloads import Payload, Waveform

if TYPE_CHECKING:
    import torch

MediaKind = Literal["audio", "image", "video"]


@dataclass(frozen=True)
class Image(Payload):
    """A decoded picture. pixels: [H, W, 3] uint8 RGB."""

    pixels: torch.Tensor
    source: str = ""

    def to_json(self) -> Any:
        h, w, _ = self.pixels.shape
        return {"source": self.source, "height": int(h), "width": int(w)}


@dataclass(frozen=True)
class Video(Payload):
    """Decoded video frames sampled at `fps`, with the file's audio track (16 kHz mono) when it has one.

    frames: [F, H, W, 3] uint8 RGB.
    """

    frames: torch.Tensor
    fps: float
    audio: Waveform | None = None
    source: str = ""

    def to_json(self) -> Any:
        f, h, w, _ = self.frames.shape
        return {"source": self.source, "frames": int(f), "height": int(h), "width": int(w), "fps": self.fps,
                "audio_seconds": None if self.audio is None else round(self.audio.seconds, 6)}


@dataclass(frozen=True)
class MediaItem:
    """One media item of a prompt, in prompt order. `audio_in_video`: a video whose audio track is used."""

    kind: MediaKind
    index: int  # position among the prompt's items of this kind
    audio_in_video: bool = False


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
class MelFeatures(Payload):
    """Log-mel features of each clip, valid frames only. features[i]: [n_mels, T_i] float32."""

    features: tuple[torch.Tensor, ...]

    def to_json(self) -> Any:
        return {"clips": len(self.features), "frames": [int(f.shape[-1]) for f in self.features]}


@dataclass(frozen=True)
class AudioEmbeddings(Payload):
    """Audio encoder output for every clip, packed. embeddings: [sum(tokens), D]; tokens[i] per clip."""

    embeddings: torch.Tensor
    tokens: tuple[int, ...]

    def to_json(self) -> Any:
        return {"tokens": list(self.tokens), "dim": int(self.embeddings.shape[-1])}


@dataclass(frozen=True)
class VisionEmbeddings(Payload):
    """Vision encoder output for every image and video, in the order of `PromptTokens.media`.

    embeddings: [N, D] merged tokens; deepstack: L tensors [N, D]; grids: (t, h, w) patch grid per item;
    kinds: "image" or "video" per item; seconds_per_grid: seconds per temporal grid step per item (0 for images).
    """

    embeddings: torch.Tensor
    deepstack: tuple[torch.Tensor, ...]
    grids: tuple[tuple[int, int, int], ...]
    kinds: tuple[str, ...]
    seconds_per_grid: tuple[float, ...]

    def to_json(self) -> Any:
        return {"grids": [list(g) for g in self.grids], "kinds": list(self.kinds),
                "tokens": int(self.embeddings.shape[0])}


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
    extras: dict[str, Any] = field(default_factory=dict)  # grids and lengths the Talker reuses for positions

    def to_json(self) -> Any:
        return {"input_ids": self.input_ids.tolist(), "rope_delta": self.rope_delta}


@dataclass(frozen=True)
class TokenId(Payload):
    """One token id (Thinker vocabulary), an item of a token stream. Text is decoded at the edge."""

    id: int

    def to_json(self) -> Any:
        return self.id

    @classmethod
    def join(cls, items: Sequence[TokenId]) -> TokenIds:
        return TokenIds(tuple(item.id for item in items))


@dataclass(frozen=True)
class TokenIds(Payload):
    """A whole sequence of token ids."""

    ids: tuple[int, ...]

    def to_json(self) -> Any:
        return list(self.ids)




@dataclass(frozen=True)
class TalkerContext(Payload):
    """What a speech decoder needs from the prompt (the user turns), independent of who writes the reply.

    ids: [U] thinker ids of the user-turn tokens (all user turns, with their <|im_start|>user ... <|im_end|>\\n
    wrappers); embeds: [U, D] the Thinker's layer-0 inputs there (word embeddings, encoder outputs at media
    pads); hidden: [U, D] the Thinker's `accept_hidden_layer` hidden states there, or None when the prompt has no
    media (only media positions use them); media_mask: [U] bool, True at audio/image/video pad positions;
    extras: grids, seconds per grid and audio lengths for 3D positions (as in ThinkerPrompt.extras).
    """

    ids: torch.Tensor
    embeds: torch.Tensor
    hidden: torch.Tensor | None
    media_mask: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)

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
