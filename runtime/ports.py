"""Port declarations and the rule that says which output may feed which input."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .payloads import Payload


class Mode(str, Enum):
    """A port carries one whole value per run, or a stream of items delivered as they are produced."""

    WHOLE = "whole"
    STREAM = "stream"


@dataclass(frozen=True)
class Port:
    """A named, typed socket on a node."""

    name: str
    type: type[Payload]
    mode: Mode = Mode.WHOLE
    required: bool = True
    doc: str = ""

    @property
    def is_stream(self) -> bool:
        return self.mode is Mode.STREAM

    def describe(self) -> str:
        text = f"{self.type.__name__}{'*' if self.is_stream else ''}"
        return text if self.required else f"{text}?"


def Input(name: str, type: type[Payload], *, stream: bool = False, required: bool = True, doc: str = "") -> Port:
    """An input port; `stream=True` receives an iterator of items, else one value."""
    return Port(name, type, Mode.STREAM if stream else Mode.WHOLE, required, doc)


def Output(name: str, type: type[Payload], *, stream: bool = False, doc: str = "") -> Port:
    """An output port; `stream=True` emits any number of items, else at most one value."""
    return Port(name, type, Mode.STREAM if stream else Mode.WHOLE, True, doc)


def feed_problem(src: Port, dst: Port) -> tuple[str, str] | None:
    """Why `src` (an output) may not feed `dst` (an input), as (issue code, message); None if it may.

    The rule: same mode (stream to stream, whole to whole), and the output's payload type is the input's
    type or a subclass of it (an input typed `Payload` accepts anything).
    """
    if src.mode is not dst.mode:
        return ("mode-mismatch",
                f"'{src.name}' is a {src.mode.value} port but '{dst.name}' takes a {dst.mode.value} value")
    if not issubclass(src.type, dst.type):
        return ("type-mismatch",
                f"'{src.name}' produces {src.type.__name__} but '{dst.name}' takes {dst.type.__name__}")
    return None
