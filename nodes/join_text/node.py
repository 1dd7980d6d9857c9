"""join_text: a stream of text pieces as one text."""
from __future__ import annotations

from typing import Iterator

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output


class JoinText(Node):
    kind = "join_text"

    class Config(NodeConfig):
        separator: str = Field("", description="Put between pieces.")

    inputs = (Input("pieces", Text, stream=True, doc="Text pieces in order."),)
    outputs = (Output("text", Text, doc="The pieces joined."),)

    def stream(self, pieces: Iterator[Text]) -> Iterator[tuple[str, Text]]:
        yield "text", Text(self.config.separator.join(piece.text for piece in pieces))
