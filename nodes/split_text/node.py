"""split_text: a text as a stream of pieces (words, characters or lines) that join back to the original."""
from __future__ import annotations

import re
from typing import Iterator, Literal

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output

_PATTERNS = {"words": r"\S+\s*|\s+", "lines": r"[^\n]*\n|[^\n]+", "chars": r"."}


class SplitText(Node):
    kind = "split_text"

    class Config(NodeConfig):
        unit: Literal["words", "chars", "lines"] = Field("words", description="What one stream item holds.")

    inputs = (Input("text", Text, doc="The text to split."),)
    outputs = (Output("pieces", Text, stream=True, doc="Pieces in order; their concatenation is the input."),)

    def stream(self, text: Text) -> Iterator[tuple[str, Text]]:
        for match in re.finditer(_PATTERNS[self.config.unit], text.text, flags=re.DOTALL):
            yield "pieces", Text(match.group(0))
