"""detokenize: a stream of token ids as a stream of text pieces, emitted as soon as they are whole characters."""
from __future__ import annotations

from typing import Any, Iterator

from pydantic import Field

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output
from ..common.token_payloads import TokenId


class Detokenize(Node):
    kind = "detokenize"
    needs_checkpoint = True

    class Config(NodeConfig):
        skip_special_tokens: bool = Field(True, description="Drop special tokens such as <|im_end|>.")

    inputs = (Input("tokens", TokenId, stream=True, doc="Token ids in the checkpoint tokenizer's vocabulary."),)
    outputs = (Output("text", Text, stream=True, doc="Text pieces; multi-byte characters are never split."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen.tokenizer import QwenTokenizer

        self._tokenizer = QwenTokenizer.from_dir(checkpoint.path)

    def stream(self, tokens: Iterator[TokenId]) -> Iterator[tuple[str, Text]]:
        decoder = self._tokenizer.stream_decoder(skip_special_tokens=self.config.skip_special_tokens)
        for token in tokens:
            piece = decoder.push(token.id)
            if piece:
                yield "text", Text(piece)
        rest = decoder.flush()
        if rest:
            yield "text", Text(rest)
