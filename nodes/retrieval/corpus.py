"""A corpus as documents: a folder of .txt/.md files (recursive; hidden files and folders skipped) or a JSONL
file (one record per line: `text`, and `id` or `source`). Files that are not UTF-8 are skipped with a warning.
`chunks` cuts a document into windows of words that overlap.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ...runtime.errors import UserError

SUFFIXES = (".txt", ".md")
_log = logging.getLogger("omnigraph.retrieval")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Document:
    source: str
    text: str


def read_corpus(path: Path) -> list[Document]:
    """Every document of the corpus at `path` with some text (a UserError if there is none)."""
    if not path.exists():
        raise UserError(f"corpus '{path}' does not exist (give a folder of .txt/.md files or a .jsonl file)")
    if path.is_dir():
        documents = [d for d in (_read_file(f, path) for f in corpus_files(path)) if d is not None]
    elif path.suffix == ".jsonl":
        documents = _read_jsonl(path)
    elif path.suffix in SUFFIXES:
        documents = [d for d in [_read_file(path, path.parent)] if d is not None]
    else:
        raise UserError(f"corpus '{path}' is neither a folder, a .jsonl file nor a .txt/.md file")
    documents = [d for d in documents if d.text.strip()]
    if not documents:
        raise UserError(f"corpus '{path}' has no text: it needs .txt or .md files (or JSONL records) that are "
                        f"not empty")
    return documents


def chunks(text: str, words: int, overlap: int) -> list[tuple[int, str]]:
    """(first character, chunk text) windows of `words` words, each sharing `overlap` words with the last."""
    spans = [m.span() for m in _WORD.finditer(text)]
    out, step = [], words - overlap
    for first in range(0, max(len(spans) - overlap, 1), step):
        window = spans[first:first + words]
        if window:
            out.append((window[0][0], text[window[0][0]:window[-1][1]]))
    return out


def corpus_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix in SUFFIXES
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def _read_file(file: Path, root: Path) -> Document | None:
    try:
        return Document(file.relative_to(root).as_posix(), file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        _log.warning("corpus file '%s' skipped: it is not UTF-8 text (%s)", file, exc.reason)
        return None
    except OSError as exc:
        raise UserError(f"corpus file '{file}' cannot be read: {exc.strerror}") from None


def _read_jsonl(path: Path) -> list[Document]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"corpus '{path}' is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    documents = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not a JSON record ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UserError(f"{path}:{number}: a record needs a 'text' string (and may have an 'id' or 'source')")
        source = record.get("id", record.get("source", f"{path.name}:{number}"))
        documents.append(Document(str(source), record["text"]))
    return documents
