"""voice_rag, the retrieval part: index build passages/s and query latency on generated passages.

    python examples/bench/voice_rag.py [--passages 10000] [--words 60] [--queries 50] [--baseline 1000] [--threads N]

A seeded JSONL corpus of `--passages` records (`--words` words each, one chunk per record) is indexed by the
retrieval node's code (nodes/retrieval/index.py) into a fresh cache folder: cold build passages/s, then the
warm build (everything from the cache). Query latency is the median of embedding one question and searching
the index. The baseline is sentence-transformers encoding the first `--baseline` passages and the same
questions in the same run. MiniLM costs about 1 GFLOP per passage of 60 words: on a busy 2-core CPU expect
minutes for 10,000.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from omnigraph.nodes.retrieval.index import build_index
from omnigraph.nodes.sentence_encoder.encoder import SentenceEncoder, default_folder

TOPICS = ["graph", "stream", "audio", "token", "batch", "cache", "model", "voice", "corpus", "filter", "Ray",
          "prompt", "vision", "checkpoint", "trace", "error", "placement", "node", "port", "template"]
WORDS = ["the", "a", "runs", "reads", "writes", "with", "every", "each", "fast", "small", "first", "later",
         "before", "after", "many", "one", "checks", "loads", "keeps", "sends", "local", "remote", "typed"]


def make_corpus(folder: Path, passages: int, words: int, seed: int = 0) -> list[str]:
    """Write corpus.jsonl; -> one question per topic."""
    rng = np.random.default_rng(seed)
    with (folder / "corpus.jsonl").open("w") as f:
        for i in range(passages):
            topic = TOPICS[i % len(TOPICS)]
            text = " ".join(topic if rng.random() < 0.15 else str(rng.choice(WORDS)) for _ in range(words))
            f.write(json.dumps({"id": f"p{i}", "text": text}) + "\n")
    return [f"What does the {topic} do first?" for topic in TOPICS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=1000, help="passages sentence-transformers encodes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = SentenceEncoder(default_folder("the benchmark"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        questions = make_corpus(folder, args.passages, args.words)
        corpus = folder / "corpus.jsonl"
        t0 = time.perf_counter()
        index, stats = build_index(corpus, encoder, args.words, 0)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, warm_stats = build_index(corpus, encoder, args.words, 0)
        warm = time.perf_counter() - t0
        assert warm_stats.embedded == 0 and stats.chunks_embedded == len(index.passages)
        texts = [p.text for p in index.passages]
    n = len(texts)
    print(f"index build (cold): {n} passages in {cold:.1f} s = {n / cold:.0f} passages/s", flush=True)
    print(f"index build (warm, all cached): {warm:.2f} s ({warm_stats.embedded} re-embedded)", flush=True)
    ours_query = lambda q: index.search(encoder.encode([q])[0], 3)  # noqa: E731
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print(f"query (embed + search top-3 of {n}): median {1000 * median_time(ours_query, questions, args):.1f} ms")
        print("baseline skipped: sentence-transformers is not installed")
        return
    theirs = SentenceTransformer(str(default_folder("the benchmark")), device="cpu")
    theirs_query = lambda q: np.argpartition(-(index.embeddings @ theirs.encode([q])[0]), 2)[:3]  # noqa: E731
    some = texts[:args.baseline]
    rates = {name: len(some) / min(timed(lambda: fn(some)) for _ in range(2))  # alternated: load hits both
             for name, fn in [("ours", encoder.encode), ("theirs", lambda t: theirs.encode(t, batch_size=32))]}
    ours_ms, theirs_ms = (1000 * m for m in median_times([ours_query, theirs_query], questions, args))
    print(f"encoder alone on {len(some)} passages: omnigraph {rates['ours']:.0f} passages/s, sentence-transformers "
          f"{rates['theirs']:.0f} passages/s ({rates['ours'] / rates['theirs']:.2f}x)")
    print(f"query (embed + search top-3 of {n}): median omnigraph {ours_ms:.1f} ms, sentence-transformers "
          f"{theirs_ms:.1f} ms ({theirs_ms / ours_ms:.2f}x)")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_times(fns, questions: list[str], args) -> list[float]:
    """Median seconds per call of each fn, called in turn on each question (so load hits all alike)."""
    times = [[] for _ in fns]
    for i in range(args.queries):
        for fn, out in zip(fns, times):
            out.append(timed(lambda: fn(questions[i % len(questions)])))
    return [statistics.median(t) for t in times]


def median_time(fn, questions: list[str], args) -> float:
    return median_times([fn], questions, args)[0]


if __name__ == "__main__":
    main()
