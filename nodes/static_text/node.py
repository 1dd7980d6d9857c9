"""static_text: a given text as a stream of Thinker-vocabulary token ids, as if a Thinker had written it."""
from __future__ import annotations

import time
from typing import Any, Iterator

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output
from ..common.token_payloads import TokenId

IM_END = "<|im_end|>"


class StaticText(Node):
    kind = "static_text"
    needs_checkpoint = True

    class Config(NodeConfig):
        text: str | None = Field(None, description="The text to emit when the `text` input is not connected.")
        end_of_reply: bool = Field(True, description="End with <|im_end|>, as a Thinker ends its reply (so "
                                   "a speech decoder treats the text exactly like a Thinker's).")
        delay_ms: float = Field(0.0, ge=0, description="Pause before each token (to mimic a live source).")

    inputs = (Input("text", Text, required=False, doc="The text (overrides the config's `text`)."),)
    outputs = (Output("tokens", TokenId, stream=True, doc="Token ids of the text, one by one."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen.tokenizer import QwenTokenizer

        self._tokenizer = QwenTokenizer.from_dir(checkpoint.path)

    def stream(self, text: Text | None = None) -> Iterator[tuple[str, TokenId]]:
        content = text.text if text is not None else self.config.text
        if content is None:
            raise UserError(f"node '{self.name}' (static_text) has no text: connect its `text` input or set "
                            f"--set {self.name}.text=...")
        ids = self._tokenizer.encode(content, allow_special=False)
        if self.config.end_of_reply:
            ids.append(self._tokenizer.token_to_id(IM_END))
        for token_id in ids:
            if self.config.delay_ms:
                time.sleep(self.config.delay_ms / 1000)
            yield "tokens", TokenId(token_id)
