"""A passage index: every chunk's embedding in one [N, C] float32 matrix, searched by inner product (the
embeddings are unit length, so the score is the cosine similarity).

Built once per corpus and cached per document, keyed by a hash of its content and the chunking and encoder
settings: a second build embeds nothing, and a changed document re-embeds only itself. The cache lives beside
the corpus (`<folder>/.omnigraph-index/`, or `.omnigraph-index/<name>/` beside a file), or under omnigraph's
cache folder when that is not writable; entries no document uses any more are removed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...runtime.cache import cache_root
from .corpus import Document, chunks, read_corpus
from .payloads import Passage

CACHE_FOLDER = ".omnigraph-index"
_log = logging.getLogger("omnigraph.retrieval")


@dataclass(frozen=True)
class BuildStats:
    documents: int
    embedded: int  # documents whose chunks were embedded in this build (the others came from the cache)
    chunks_embedded: int


@dataclass(frozen=True)
class PassageIndex:
    embeddings: np.ndarray  # [N, C] float32
    passages: tuple[Passage, ...]  # N, score 0

    def search(self, query: np.ndarray, k: int) -> list[Passage]:
        """query [C] -> the k best passages, best first, with their scores."""
        scores = self.embeddings @ query  # [N]
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [Passage(**{**vars(self.passages[i]), "score": float(scores[i])}) for i in best]


def build_index(corpus: Path, encoder, chunk_words: int, overlap_words: int,
                cache_dir: Path | None = None) -> tuple[PassageIndex, BuildStats]:
    documents = read_corpus(corpus)
    settings = f"{encoder.identity}-{chunk_words}-{overlap_words}"
    folder = _cache_folder(corpus, cache_dir) / hashlib.sha256(settings.encode()).hexdigest()[:16]
    entries = [_entry(d, folder) for d in documents]
    todo = [(d, path) for d, path in zip(documents, entries) if not path.is_file()]
    pieces = {path: [(start, text) for start, text in chunks(d.text, chunk_words, overlap_words)]
              for d, path in todo}
    flat = [text for path in pieces for _, text in pieces[path]]
    vectors = encoder.encode(flat) if flat else np.zeros((0, encoder.dim), np.float32)
    offset = 0
    for path, items in pieces.items():
        _store(path, vectors[offset:offset + len(items)], items)
        offset += len(items)
    _prune(folder, set(entries))
    passages, matrices = [], []
    for d, path in zip(documents, entries):
        embeddings, items = _load(path)
        matrices.append(embeddings)
        passages += [Passage(text, 0.0, d.source, i, start) for i, (start, text) in enumerate(items)]
    index = PassageIndex(np.concatenate(matrices), tuple(passages))
    return index, BuildStats(len(documents), len(todo), len(flat))


def _entry(document: Document, folder: Path) -> Path:
    digest = hashlib.sha256(document.source.encode() + b"\0" + document.text.encode()).hexdigest()
    return folder / f"{digest[:40]}.safetensors"


def _store(path: Path, embeddings: np.ndarray, items: list[tuple[int, str]]) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    save_file({"embeddings": np.ascontiguousarray(embeddings, np.float32)}, str(partial),
              metadata={"chunks": json.dumps(items)})
    os.replace(partial, path)  # concurrent builders write whole files only


def _load(path: Path) -> tuple[np.ndarray, list[tuple[int, str]]]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return f.get_tensor("embeddings"), [tuple(c) for c in json.loads(f.metadata()["chunks"])]


def _prune(folder: Path, keep: set[Path]) -> None:
    for stale in folder.glob("*.safetensors"):
        if stale not in keep:
            stale.unlink(missing_ok=True)


def _cache_folder(corpus: Path, cache_dir: Path | None) -> Path:
    """Beside the corpus when writable, else under omnigraph's cache folder; a given `cache_dir` holds one
    folder per corpus path."""
    corpus = corpus.resolve()
    per_corpus = hashlib.sha256(str(corpus).encode()).hexdigest()[:16]
    if cache_dir is not None:
        return cache_dir / per_corpus
    beside = corpus / CACHE_FOLDER if corpus.is_dir() else corpus.parent / CACHE_FOLDER / corpus.name
    try:
        beside.mkdir(parents=True, exist_ok=True)
        if os.access(beside, os.W_OK):
            return beside
    except OSError:
        pass
    fallback = cache_root() / "index" / per_corpus
    _log.info("corpus folder '%s' is not writable: its index is cached in '%s'", corpus, fallback)
    return fallback
