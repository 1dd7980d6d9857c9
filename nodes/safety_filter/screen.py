"""The screening state of one reply: pending tokens, the text they decode to, and what may be released."""
from __future__ import annotations

from typing import Any


class Screen:
    """Feed token ids with `push`; each call returns the ids that are now final. `finish` flushes the rest."""

    def __init__(self, pattern: Any, tokenizer: Any, policy: str, mask: str, sentence: str):
        self.pattern, self.tokenizer = pattern, tokenizer
        self.policy, self.mask, self.sentence = policy, mask, sentence
        self.pending: list[int] = []
        self.stopped = False

    def push(self, token_id: int) -> list[int]:
        self.pending.append(token_id)
        return self._release(final=False)

    def finish(self) -> list[int]:
        return [] if self.stopped else self._release(final=True)

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def _release(self, final: bool) -> list[int]:
        if self.pattern is None:
            out, self.pending = self.pending, []
            return out
        text = self._text(self.pending)
        hold, spans = len(text), []
        for match in self.pattern.finditer(text, partial=True):
            if match.partial or (match.end() == len(text) and not final):
                hold = match.start()  # may still grow into (another) match: keep it back
                break
            if match.end() > match.start():
                spans.append((match.start(), match.end()))
        count = self._tokens_before(hold, spans, final)
        if count == 0:
            return []
        released, self.pending = self.pending[:count], self.pending[count:]
        region = self._text(released)
        inside = [(a, b) for a, b in spans if b <= len(region)]
        if not inside:
            return released
        if self.policy == "redact":
            rewritten, last = [], 0
            for a, b in inside:
                rewritten += [region[last:a], self.mask]
                last = b
            return self.tokenizer.encode("".join(rewritten) + region[last:], allow_special=True)
        self.stopped = True  # replace / block: nothing after the first match is said
        head = region[: inside[0][0]] + (self.sentence if self.policy == "replace" else "")
        return self.tokenizer.encode(head, allow_special=True) if head else []

    def _tokens_before(self, hold: int, spans: list[tuple[int, int]], final: bool) -> int:
        """How many pending tokens decode to text that ends at or before `hold` and splits no match."""
        if final and hold >= len(self._text(self.pending)):
            return len(self.pending)
        for count in range(len(self.pending), 0, -1):
            end = len(self._text(self.pending[:count]))
            if end <= hold and not any(a < end < b for a, b in spans):
                return count
        return 0
