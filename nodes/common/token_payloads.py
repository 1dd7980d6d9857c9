"""Token ids as they travel between nodes: one id of a stream, or a whole sequence (text is decoded at the edge)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...runtime.payloads import Payload


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
