"""regex_replace: rewrites each piece of a text stream with a regular expression (matches within one piece)."""
from __future__ import annotations

import re
from typing import Iterator

from pydantic import Field, field_validator

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output


class RegexReplace(Node):
    kind = "regex_replace"

    class Config(NodeConfig):
        pattern: str = Field(description="A Python regular expression.")
        replacement: str = Field("", description="What each match becomes (\\1 refers to groups).")
        ignore_case: bool = Field(False, description="Match without regard to case.")

        @field_validator("pattern")
        @classmethod
        def _compiles(cls, pattern: str) -> str:
            try:
                re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
            return pattern

    inputs = (Input("text", Text, stream=True, doc="Text pieces."),)
    outputs = (Output("text", Text, stream=True, doc="The pieces, rewritten."),)

    def stream(self, text: Iterator[Text]) -> Iterator[tuple[str, Text]]:
        regex = re.compile(self.config.pattern, re.IGNORECASE if self.config.ignore_case else 0)
        for piece in text:
            yield "text", Text(regex.sub(self.config.replacement, piece.text))
