"""Payloads of media and of the encoders that read them (family-agnostic).

Shape glossary: T mel frames, N tokens of one modality, D model width, L deepstack levels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ...runtime.payloads import Payload, Waveform

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
