"""Retrieved passages: what a retrieval node hands on (text, score, where it came from)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...runtime.payloads import Payload


@dataclass(frozen=True)
class Passage:
    """One chunk of a corpus document. `chunk`: its index in the document; `start`: its first character."""

    text: str
    score: float  # cosine similarity to the query
    source: str  # the file (relative to the corpus folder), or the JSONL record's id
    chunk: int
    start: int


@dataclass(frozen=True)
class Passages(Payload):
    """The top passages for a query, best first."""

    items: tuple[Passage, ...]
    query: str = ""
    file_suffix: ClassVar[str] = ".json"

    def to_json(self) -> Any:
        return {"query": self.query, "passages": [vars(p) for p in self.items]}
