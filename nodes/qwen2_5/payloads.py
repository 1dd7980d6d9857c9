"""What the Qwen2.5-Omni Thinker hands to its Talker (reference qwen2.5-omni.md section 6.2).

The Talker reads thinker-space states: for the prompt, the final-normed last hidden state plus the input
embedding (the embedding zeroed at audio/image/video pads); for each generated token g_j, the hidden state and
embedding of the step that fed g_j back (so the state of g_j arrives with the next token, and the last token's
state never exists).

CodecId / CodecIds: what the Talker hands token2wav (one codebook).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ...runtime.payloads import Payload

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TalkerPrompt(Payload):
    """The prompt part of the Talker's prefill.

    states: [P, D] H_0 + E_0 (E_0 zero at multimodal pads); input_ids: [P] thinker prompt ids;
    positions: [3, P] the prompt's TMRoPE position ids; rope_delta: text position c (c >= P) is c + rope_delta.
    """

    states: torch.Tensor
    input_ids: torch.Tensor
    positions: torch.Tensor
    rope_delta: int

    def to_json(self) -> Any:
        return {"tokens": int(self.input_ids.shape[0]), "rope_delta": self.rope_delta}


@dataclass(frozen=True)
class ThinkerState(Payload):
    """One generated thinker token g_j and its thinker-space state H_{j+1} + E_{j+1}: [D]."""

    token_id: int
    state: torch.Tensor

    def to_json(self) -> Any:
        return self.token_id


@dataclass(frozen=True)
class CodecId(Payload):
    """One Qwen2.5-Omni codec id (a single codebook, 50 per second), an item of the Talker's stream."""

    id: int

    def to_json(self) -> Any:
        return self.id

    @classmethod
    def join(cls, items: Sequence[CodecId]) -> CodecIds:
        return CodecIds(tuple(item.id for item in items))


@dataclass(frozen=True)
class CodecIds(Payload):
    """A whole utterance of codec ids, the codec EOS excluded."""

    ids: tuple[int, ...]

    def to_json(self) -> Any:
        return list(self.ids)
