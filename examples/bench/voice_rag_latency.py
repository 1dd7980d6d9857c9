"""voice_rag end to end: from the end of a spoken question (a ~5 s recording, complete when the run starts) to the
first chunk of the spoken answer, with each stage's first output, on this machine's CPU.

    python examples/bench/voice_rag_latency.py [--repeats 3] [--threads N]

The question is spoken by Piper (steady voice) and written to a WAV; one LocalExecutor is loaded once and
warmed up, then each repeat runs the graph and reads the per-node times of `RunResult.stats` (seconds since
the run started): when each stage produced its first output and finished. Target: first audio under 2.5 s.
Also prints Piper's real-time factor on the answer (seconds of compute per second of speech).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import soundfile
import torch

from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.payloads import AudioChunk, Text
from omnigraph.runtime.registry import default_registry
from omnigraph.runtime.validate import load_graph

QUESTION = "Which command checks a graph file without running it, and what does it report?"
STAGES = ["decode", "vad", "asr", "ask", "retrieve", "ground", "llm", "speak"]


def speak(text: str, path: Path) -> float:
    """`text` spoken by Piper into a WAV at `path`; -> its seconds."""
    cls = default_registry().get("piper_tts")
    piper = cls(cls.Config(noise_scale=0.0, noise_w_scale=0.0))
    piper.load("cpu")
    audio = AudioChunk.join([chunk for _, chunk in piper.stream(text=Text(text))])
    soundfile.write(path, audio.samples.numpy(), audio.sample_rate)
    return audio.samples.shape[0] / audio.sample_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "question.wav"
        seconds = speak(QUESTION, wav)
        overrides = {("speak", "noise_scale"): 0.0, ("speak", "noise_w_scale"): 0.0}
        with LocalExecutor(load_graph("voice_rag", overrides=overrides)) as executor:
            executor.load()
            executor.run({"audio": str(wav)})  # warm-up
            firsts, rows = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run = executor.start({"audio": str(wav)})
                first = next(time.perf_counter() - t0 for event in run.events() if event.name == "audio")
                result = run.result()
                firsts.append(first)
                rows.append(result.stats.nodes)
            out = result.outputs
    answer_seconds = sum(c.samples.shape[0] for c in out["audio"]) / out["audio"][0].sample_rate
    speak_wall = rows[-1]["speak"].wall or 0.0
    print(f"voice_rag, a {seconds:.1f} s spoken question: {out['question'].text!r}")
    print(f"  answer: {''.join(p.text for p in out['text'])!r}")
    print(f"  first spoken chunk after the question: median {statistics.median(firsts):.2f} s "
          f"(range {min(firsts):.2f}-{max(firsts):.2f} s over {len(firsts)} runs; target < 2.5 s)")
    print("  stage: first output / finished, s since the run started (last run)")
    for name in STAGES:
        s = rows[-1][name]
        print(f"    {name:9s} {s.first_output or 0.0:6.2f} / {s.finished or 0.0:6.2f}")
    print(f"  Piper: {answer_seconds:.1f} s of speech in {speak_wall:.1f} s of its node's wall time "
          f"(real-time factor {speak_wall / answer_seconds:.2f}, bounded by the answer's streaming)")


if __name__ == "__main__":
    main()
