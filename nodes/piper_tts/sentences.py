"""Text arriving in pieces, given out sentence by sentence (or clause by clause) as soon as each is complete."""
from __future__ import annotations

import re

# A sentence ends at . ! ? or … (with any closing quotes or brackets) followed by white space, or at a line break;
# a clause also at , ; or :.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"[.!?…,;:]+[\"'”’)\]]*\s+|\n+")


class SentenceBuffer:
    """`add` pieces, `finish` at the end; both return the sentences completed (stripped, never empty).

    A run of text with no sentence end is cut at its last space before `max_chars` (or at `max_chars`);
    with `clauses`, text is also cut after , ; and :."""

    def __init__(self, max_chars: int, clauses: bool = False):
        self._max = max_chars
        self._end = _CLAUSE_END if clauses else _SENTENCE_END
        self._text = ""

    def add(self, piece: str) -> list[str]:
        self._text += piece
        out = []
        while True:
            match = self._end.search(self._text)
            if match is not None:
                cut = match.end()
            elif len(self._text) > self._max:
                space = self._text.rfind(" ", 0, self._max)
                cut = space + 1 if space > 0 else self._max
            else:
                return out
            sentence, self._text = self._text[:cut].strip(), self._text[cut:]
            if sentence:
                out.append(sentence)

    def finish(self) -> list[str]:
        rest, self._text = self._text.strip(), ""
        return [rest] if rest else []
