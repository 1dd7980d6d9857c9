"""Values that travel along edges: small frozen dataclasses, mostly of tensors.

Every payload can describe itself as JSON (`to_json`), save itself as a file (`save`), and, where it makes
sense, be built from a command-line string (`from_cli`) or joined from the items of a stream (`join`).
Torch is imported lazily so that graph validation stays free of it.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from .errors import UserError

if TYPE_CHECKING:
    import torch


def jsonable(value: Any) -> Any:
    """Plain JSON data for payload fields: tensors and arrays become nested lists."""
    if isinstance(value, Payload):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and scalars
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class Payload:
    """Base of every value that crosses an edge. A port typed `Payload` accepts any payload."""

    file_suffix: ClassVar[str] = ".json"

    def to_json(self) -> Any:
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def save(self, stem: Path) -> Path:
        """Write this value to `stem` + `file_suffix`; returns the path written."""
        path = stem.with_suffix(self.file_suffix)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def from_cli(cls, text: str) -> Payload:
        raise UserError(f"a {cls.__name__} cannot be given on the command line")

    @classmethod
    def join(cls, items: Sequence[Payload]) -> Payload | None:
        """One value standing for a whole stream of these items, or None if they don't join."""
        return None


@dataclass(frozen=True)
class Text(Payload):
    """A piece of text: a whole document, or one piece of a text stream."""

    text: str
    file_suffix: ClassVar[str] = ".txt"

    def to_json(self) -> Any:
        return self.text

    def save(self, stem: Path) -> Path:
        path = stem.with_suffix(self.file_suffix)
        path.write_text(self.text, encoding="utf-8")
        return path

    @classmethod
    def from_cli(cls, text: str) -> Text:
        return cls(text)

    @classmethod
    def join(cls, items: Sequence[Text]) -> Text:
        return cls("".join(item.text for item in items))


@dataclass(frozen=True)
class FilePath(Payload):
    """A path to an existing, readable file (media to decode, a file a sink wrote)."""

    path: str

    def to_json(self) -> Any:
        return self.path

    @classmethod
    def from_cli(cls, text: str) -> FilePath:
        path = Path(text).expanduser()
        if not path.is_file():
            raise UserError(f"input file '{text}' does not exist or is not a file")
        if not os.access(path, os.R_OK):
            raise UserError(f"input file '{text}' is not readable (check its permissions)")
        return cls(str(path))


@dataclass(frozen=True)
class Waveform(Payload):
    """Mono audio. samples: [N] float32 in [-1, 1]; `source`: the file it was decoded from, if any."""

    samples: torch.Tensor
    sample_rate: int
    source: str = ""
    file_suffix: ClassVar[str] = ".wav"

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    def to_json(self) -> Any:
        return {"sample_rate": self.sample_rate, "num_samples": int(self.samples.shape[0]),
                "seconds": round(self.seconds, 6)}

    def save(self, stem: Path) -> Path:
        import soundfile

        path = stem.with_suffix(self.file_suffix)
        soundfile.write(path, self.samples.detach().cpu().float().numpy(), self.sample_rate, subtype="FLOAT")
        return path


@dataclass(frozen=True)
class AudioChunk(Payload):
    """A span of a streamed waveform. samples: [N] float32; `index` counts chunks from 0."""

    samples: torch.Tensor
    sample_rate: int
    index: int = 0

    def to_json(self) -> Any:
        return {"index": self.index, "sample_rate": self.sample_rate, "num_samples": int(self.samples.shape[0])}

    @classmethod
    def join(cls, items: Sequence[AudioChunk]) -> Waveform | None:
        import torch

        if not items:
            return None
        rates = {item.sample_rate for item in items}
        if len(rates) != 1:
            raise ValueError(f"audio chunks disagree on sample rate: {sorted(rates)}")
        return Waveform(torch.cat([item.samples for item in items]), rates.pop())
