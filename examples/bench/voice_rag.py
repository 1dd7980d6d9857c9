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
        latencies = []
        for i in range(args.queries):
            t0 = time.perf_counter()
            index.search(encoder.encode([questions[i % len(questions)]])[0], 3)
            latencies.append(time.perf_counter() - t0)
        texts = [p.text for p in index.passages]
    n = len(texts)
    print(f"index build (cold): {n} passages in {cold:.1f} s = {n / cold:.0f} passages/s")
    print(f"index build (warm, all cached): {warm:.2f} s ({warm_stats.embedded} re-embedded)")
    print(f"query (embed + search top-3 of {n}): median {1000 * statistics.median(latencies):.1f} ms")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("baseline skipped: sentence-transformers is not installed")
        return
    theirs = SentenceTransformer(str(default_folder("the benchmark")), device="cpu")
    some = texts[:args.baseline]
    t0 = time.perf_counter()
    theirs.encode(some, batch_size=32)
    st_rate = len(some) / (time.perf_counter() - t0)
    st_latencies = []
    for i in range(args.queries):
        t0 = time.perf_counter()
        query = theirs.encode([questions[i % len(questions)]])[0]
        np.argpartition(-(index.embeddings @ query), 2)[:3]
        st_latencies.append(time.perf_counter() - t0)
    print(f"sentence-transformers encode: {st_rate:.0f} passages/s; omnigraph's cold build is "
          f"{n / cold / st_rate:.2f}x its speed (including chunking and cache writes)")
    print(f"sentence-transformers query: median {1000 * statistics.median(st_latencies):.1f} ms; omnigraph is "
          f"{statistics.median(st_latencies) / statistics.median(latencies):.2f}x its speed")


if __name__ == "__main__":
    main()
