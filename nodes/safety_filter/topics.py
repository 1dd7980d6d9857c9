"""The classifier screen: each sentence of a reply is held back until it is whole, embedded with the sentence
encoder (nodes/sentence_encoder) and compared with the banned topics; the first sentence whose cosine
similarity to a topic reaches the threshold stops the reply, and the refusal is said instead."""
from __future__ import annotations

import re
from typing import Any

import numpy as np

SENTENCE_END = re.compile(r"[.!?;:\n](?=\s)|\n")


class TopicClassifier:
    """text -> (topic, similarity) of the closest banned topic at or above `threshold`, else None."""

    def __init__(self, encoder: Any, topics: list[str], threshold: float):
        self.encoder, self.topics, self.threshold = encoder, topics, threshold
        self.vectors = encoder.encode(topics)  # [n_topics, C], unit length

    def __call__(self, text: str) -> tuple[str, float] | None:
        if not text.strip():
            return None
        scores = self.vectors @ self.encoder.encode([text])[0]
        best = int(np.argmax(scores))
        return (self.topics[best], float(scores[best])) if scores[best] >= self.threshold else None


class TopicScreen:
    """Feed token ids with `push`; each call returns the ids that are now final. `finish` flushes the rest.
    After a match, `reason` says why and `stopped` is set."""

    def __init__(self, classify: TopicClassifier, tokenizer: Any, refusal: str):
        self.classify, self.tokenizer, self.refusal = classify, tokenizer, refusal
        self.pending: list[int] = []
        self.stopped, self.reason, self.said = False, "", False

    def push(self, token_id: int) -> list[int]:
        self.pending.append(token_id)
        ends = [m.end() for m in SENTENCE_END.finditer(self._text(self.pending))]
        if not ends:
            return []
        count = max(n for n in range(len(self.pending) + 1) if len(self._text(self.pending[:n])) <= ends[-1])
        return self._judge(count) if count else []

    def finish(self) -> list[int]:
        return [] if self.stopped or not self.pending else self._judge(len(self.pending))

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _judge(self, count: int) -> list[int]:
        """Judge the first `count` pending tokens (whole sentences): release them, or refuse."""
        text = self._text(self.pending[:count])
        match = self.classify(text)
        if match is None:
            out, self.pending = self.pending[:count], self.pending[count:]
            self.said = self.said or bool(out)
            return out
        self.stopped, self.pending = True, []
        self.reason = f"the reply turned to the banned topic '{match[0]}' (similarity {match[1]:.2f} >= " \
                      f"{self.classify.threshold}): {text.strip()!r}"
        space = " " if self.said and not self.refusal[:1].isspace() else ""  # the next sentence's space went too
        return self.tokenizer.encode(space + self.refusal, allow_special=True)
