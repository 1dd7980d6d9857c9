"""safety_filter: screens a token stream with word and regex lists; redacts, replaces or blocks what matches.

It holds back only the tokens that could still be part of a match (a partial match at the end of the text
seen so far), so the lookahead is as small as the patterns allow. Text that matches nothing passes through
as the original token ids; rewritten text is tokenised again.
"""
from __future__ import annotations

from typing import Any, Iterator, Literal

from pydantic import Field, field_validator

from ...runtime.errors import UserError
from ...runtime.media_payloads import TokenId
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output


class SafetyFilter(Node):
    kind = "safety_filter"
    needs_checkpoint = True

    class Config(NodeConfig):
        words: list[str] = Field(default_factory=list, description="Words or phrases, matched as whole words.")
        patterns: list[str] = Field(default_factory=list, description="Regular expressions (`regex` syntax).")
        ignore_case: bool = Field(True, description="Match regardless of case.")
        policy: Literal["redact", "replace", "block"] = Field(
            "redact", description="redact: each match becomes `mask`; replace: the reply from the first match "
            "on becomes `sentence`; block: the reply stops before the first match.")
        mask: str = Field("[redacted]", description="What a match becomes under `redact`.")
        sentence: str = Field("I'm sorry, I can't say that.", description="The rest of the reply under `replace`.")

        @field_validator("patterns")
        @classmethod
        def _compiles(cls, patterns: list[str]) -> list[str]:
            import regex

            for pattern in patterns:
                try:
                    regex.compile(pattern)
                except (regex.error, OverflowError, RecursionError) as exc:
                    raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
            return patterns

    inputs = (Input("tokens", TokenId, stream=True, doc="Reply token ids (Thinker vocabulary)."),)
    outputs = (Output("tokens", TokenId, stream=True, doc="The screened reply's token ids."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        import regex

        from ...runtime.tokenizer import QwenTokenizer

        if checkpoint is None:
            raise UserError(f"node '{self.name}' (safety_filter) needs a checkpoint's tokenizer: pass --checkpoint DIR")
        self._tokenizer = QwenTokenizer.from_dir(checkpoint.path)
        alternatives = [r"(?<!\w)" + regex.escape(w) + r"(?!\w)" for w in self.config.words if w]
        alternatives += [f"(?:{p})" for p in self.config.patterns]
        flags = regex.IGNORECASE if self.config.ignore_case else 0
        self._regex = regex.compile("|".join(alternatives), flags) if alternatives else None

    def stream(self, tokens: Iterator[TokenId]) -> Iterator[tuple[str, TokenId]]:
        from .screen import Screen

        screen = Screen(self._regex, self._tokenizer, self.config.policy, self.config.mask, self.config.sentence)
        for token in tokens:
            for token_id in screen.push(token.id):
                yield "tokens", TokenId(token_id)
            if screen.stopped:
                return
        for token_id in screen.finish():
            yield "tokens", TokenId(token_id)
