"""Concurrent `qwen3_omni` requests (text in, speech out) through the public API (`LocalExecutor.start` called N
times) against the same requests one after another, on the `small` checkpoint, the process pinned to one core (so
any gain is batching, not a second core).

    python examples/bench/talker_concurrency.py [--n 1 4] [--tokens 24] [--frames 48] [--repeats 2]
                                                 [--checkpoint DIR] [--device cpu] [--speech-only]

Prints, per N and repeat: aggregate codec frames/s and Thinker tokens/s of N concurrent requests and of the same
N requests in a row, the frames/s ratio (target at N = 4: >= 2.5x), and the median and p95 time to the first
audio chunk of the concurrent requests over that of a request alone (target: median <= 2.5x). The ratio per CPU
second (the process's CPU time; pinned, that is the core's time it got) stays meaningful on a shared machine,
where other processes take the core part of the wall time; so do the first-audio times in CPU time (the
process's CPU seconds from the start to a request's first chunk, against the same for a request alone). Requests are
sampled, each with its own seed and text; without --checkpoint the small preset is written once to
~/.cache/omnigraph/small-seed0. --speech-only runs the Talker <-> code predictor loop alone (examples/bench/
talker.py's graph, a fixed reply as its text), so the figures are those of the stages batched here.

Measured N = 4 (2-core machine shared with other work, pinned; ranges over repeats), before -> after one
scheduler for the loop: --speech-only 0.91-2.88x -> 2.50-2.94x wall, 1.35-1.92x -> 2.13-2.25x per CPU second;
qwen3_omni 1.50-1.87x -> 1.83-2.03x wall, median first audio 4.4-5.5x -> 2.9-4.5x of alone (the Thinker's
prefills of the four prompts now dominate). With the loop fused, the first `requests` item leaves after the
code predictor's first frame, not before it. Later (load ~8 on 2 cores, old and new code alternated, 4 runs
each): per CPU second 1.83-2.15x before, 1.72-2.14x after the batched code predictor draw (no change beyond the
noise); first audio in CPU time median 2.1-3.0x before, 2.0-3.4x after.

Where a batched frame of 4 goes (CPU seconds per call inside the run, N = 4): the code predictor's frame 35-36 ms
(17-22 ms at 1 row), the Code2Wav chunk 22-23 ms (10.5-11.5 at 1), the Thinker's decode + head 38-42 ms per
token, the Talker's decode 5.5-6.3 ms. The code predictor's rows cost because MKL's sgemm at 2-8 rows is
compute-bound on this AMD EPYC core (~10-12 GFLOP/s; a [B, 256] x [256, 2048] head takes 93 us at 1 row, its
gemv path, 205 at 2, 338 at 4, 373 at 8), whatever the layout ([in, out], an [out, in] view, F.linear, addmm and
(W x^T)^T are within noise at 4 rows). First audio of requests arriving together waits for the Thinker's
prefills, one call per prompt (43-64 ms each for 54 positions). Code2Wav batches split: a stream waiting for its
frame is away, so the first frame of a Talker batch to arrive is decoded alone (about a third of the calls).
Since the fused Talker announces each batch's frames to Code2Wav (StepBatcher.coming) and prefills a newcomer
once its first text token is known: Code2Wav calls of one row 26-40% -> 6-17% (80-86 -> 51-60 calls for 4 x 48
frames); N = 4 per CPU second 1.64-2.26x (median 2.02) -> 2.04-2.50x (median 2.25); first audio of a request
alone 206-262 -> 165-204 ms of CPU, at N = 4 (median of the four) 464-651 (median 546) -> 412-724 (median 475)
ms, which is 1.99-2.78x (median 2.19) -> 2.02-3.55x (median 2.73) of alone, since alone gained more (load 8-21,
8 alternated runs each). The line's "code2wav calls" counts the Code2Wav model calls of the concurrent runs and
the share of them with one row.
Profile of N = 4 (CPU per stage): code predictor frames 34-38%, Code2Wav 24-28%, Thinker decode + head 20-24%,
Talker decode 6%; a 4-row code predictor frame cost 2.0-2.3x a 1-row one, MKL's few-row products dominating
(a [4, 256] x [256, 2048] head 270-400 us in the loop, 66-120 at 1 row). Before -> after the code predictor's
heads as oneDNN-packed products for several rows, newcomers' Talker prefills of one batch in one padded call,
and (fused) a newcomer's prefill joining the next step of the runs in step (old and new alternated, 8 runs each,
load 4-9): N = 4 per CPU second 1.78-2.76x (median 2.17) -> 1.95-2.58x (median 2.27), wall 0.96-2.78x -> 1.80-3.38x;
first audio in CPU time median 2.14-3.95x (median 2.75) -> 2.09-3.63x (median 2.61) of alone, p95 2.33-4.28x ->
2.39-4.04x; alone 135-164 -> 134-162 ms of CPU. The newcomers still wait for the Thinker (their prompts reach it
in two prefill groups) and then share the core with its 4-row decode on the way to their first chunk.

--graph qwen2_5_omni runs the same requests on the Qwen2.5-Omni graph (Thinker, Talker, token2wav in mode whole):
"frames" are then its codec ids (50 per audio second), and a second line gives audio seconds per CPU second;
without --checkpoint the tiny25 preset (write small25 once with `omnigraph make-checkpoint DIR --preset small25`).
Measured on small25 (--tokens 16 --frames 48, five alternating runs each on a core shared with other work,
before -> after the Qwen2.5 Talker's lockstep batching and token2wav's batched solves): N = 4 per CPU second
0.99-1.37x -> 1.05-1.33x, audio seconds per CPU second 0.38-0.48 -> 0.40-0.60 (N = 1: 0.31-0.45), no change
beyond the noise; first audio (wall time; alone itself varied 2.4-15 s) median 1.8-4.2x and p95 the same ->
median 1.4-7.4x of alone. On the CPU token2wav bounds the reply: its DiT is arithmetic-bound (~29 ms of CPU per
code against ~5 ms per Talker step), so batching it gains little there, while the Talker alone (4 runs of 48
codes) went from 1.14-2.09x to 1.90-2.49x per CPU second.
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

import torch

from concurrency import small_checkpoint
from omnigraph.nodes.qwen2_5.family import tiny_random_checkpoint
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.nodes.common.token_payloads import TokenId
from omnigraph.nodes.qwen.payloads import PromptTokens
from omnigraph.runtime.validate import load_graph
from omnigraph.testing import graph_from_yaml
from talker import PROMPT, TTS

TEXTS = ["Tell me about the sea.", "Name three colours.", "What is a good breakfast?", "Sing me a short song.",
         "Why is the sky blue?", "Count to five.", "Describe a cat.", "Say something kind."]


REPLY = [TokenId(i) for i in [151644, 77091, 198] * 8]  # --speech-only: the text the Talker speaks (no tokens/s)


def one(executor: LocalExecutor, text: str, seed: int, t0: tuple[float, float], out: list, index: int) -> None:
    """Run one request; out[index] = (seconds from t0 = (wall, process CPU) to its first audio chunk
    (--speech-only: frame request), codec frames, Thinker tokens, process CPU seconds from t0 to that chunk)."""
    speech_only = "codec_codes" not in executor.graph.outputs
    qwen2_5 = executor.graph.name == "qwen2_5_omni"
    inputs = {"prompt": PromptTokens(torch.tensor(PROMPT)), "tokens": REPLY} if speech_only else {"text": text}
    run = executor.start(inputs, seed=seed)
    first = first_cpu = None
    for event in run.events():
        if first is None and event.name in ("audio", "requests"):
            first, first_cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
    outputs = run.result().outputs
    codes = outputs["codes" if speech_only else "codec_codes"]
    frames = codes.ids if qwen2_5 else codes.frames
    out[index] = (first, len(frames), len(REPLY) if speech_only else len(outputs["thinker_token_ids"].ids), first_cpu)


def code2wav_rows(executor: LocalExecutor) -> list[int]:
    """The rows of every Code2Wav model call from now on (empty when the graph has no code2wav)."""
    rows: list[int] = []
    node = executor.nodes.get("code2wav")
    if node is not None:
        node.model.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    return rows


def concurrent(executor: LocalExecutor, requests: list[tuple[str, int]]) -> tuple[float, float, list[tuple]]:
    """All requests at once: (wall seconds, CPU seconds, per request (first audio s, frames, tokens, first audio
    CPU s))."""
    out: list = [None] * len(requests)
    t0, c0 = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=one, args=(executor, text, seed, (t0, c0), out, i))
               for i, (text, seed) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, time.process_time() - c0, out


def sequential(executor: LocalExecutor, requests: list[tuple[str, int]]) -> tuple[float, float, list[tuple]]:
    out: list = [None] * len(requests)
    t0, c0 = time.perf_counter(), time.process_time()
    for i, (text, seed) in enumerate(requests):
        one(executor, text, seed, (time.perf_counter(), time.process_time()), out, i)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--tokens", type=int, default=24, help="the Thinker's max_new_tokens of each request")
    parser.add_argument("--frames", type=int, default=48, help="the Talker's max_frames of each request")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per N")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--speech-only", action="store_true", help="the Talker <-> code predictor loop alone")
    parser.add_argument("--graph", choices=["qwen3_omni", "qwen2_5_omni"], default="qwen3_omni")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    torch.set_num_threads(1)
    qwen2_5 = args.graph == "qwen2_5_omni"
    checkpoint = Checkpoint.open(args.checkpoint or (tiny_random_checkpoint() if qwen2_5 else small_checkpoint()))
    batch = max(args.n)
    if qwen2_5:
        graph = load_graph("qwen2_5_omni", overrides={("thinker", "max_new_tokens"): args.tokens,
                                                      ("talker", "max_codes"): args.frames,
                                                      ("thinker", "max_batch"): batch, ("talker", "max_batch"): batch,
                                                      ("token2wav", "max_batch"): batch})
    elif args.speech_only:
        graph = graph_from_yaml((TTS % ("false", args.frames, "false")).replace(
            "outputs: {codes: talker.codes}", "outputs: {codes: talker.codes, requests: talker.requests}"))
    else:
        graph = load_graph("qwen3_omni", overrides={("thinker", "max_new_tokens"): args.tokens,
                                                    ("talker", "max_frames"): args.frames,
                                                    ("thinker", "max_batch"): batch, ("talker", "max_batch"): batch,
                                                    ("code_predictor", "max_batch"): batch})
    executor = LocalExecutor(graph, device=args.device, checkpoint=checkpoint)
    executor.load()
    sequential(executor, [(TEXTS[0], 0)])  # warm-up
    rows = code2wav_rows(executor)
    _, _, alone = sequential(executor, [(TEXTS[i], i) for i in range(3)])
    first_alone, first_alone_cpu = (statistics.median(r[k] for r in alone) for k in (0, 3))
    what = "talker <-> code_predictor alone" if args.speech_only else f"{args.graph} (text in)"
    print(f"{what}, small checkpoint, {args.device}, 1 core, max_new_tokens {args.tokens}, max_frames {args.frames}; "
          f"first audio alone {first_alone * 1e3:.0f} ms ({first_alone_cpu * 1e3:.0f} ms of CPU)")
    for n in args.n:
        requests = [(TEXTS[i % len(TEXTS)], 100 + i) for i in range(n)]
        for _ in range(args.repeats):
            seq_wall, seq_cpu, seq = sequential(executor, requests)
            rows.clear()
            con_wall, con_cpu, con = concurrent(executor, requests)
            rate = lambda rows, seconds, k: sum(r[k] for r in rows) / seconds  # noqa: E731
            firsts, firsts_cpu = (sorted(r[k] for r in con) for k in (0, 3))
            p95 = lambda xs: xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]  # noqa: E731
            tokens = "" if args.speech_only else (f" | tokens/s {rate(con, con_wall, 2):6.1f} vs "
                                                  f"{rate(seq, seq_wall, 2):6.1f}")
            print(f"  N={n:2d}: frames/s concurrent {rate(con, con_wall, 1):6.1f}, sequential "
                  f"{rate(seq, seq_wall, 1):6.1f}, ratio {rate(con, con_wall, 1) / rate(seq, seq_wall, 1):5.2f}x "
                  f"(per CPU second {rate(con, con_cpu, 1) / rate(seq, seq_cpu, 1):5.2f}x){tokens} | first audio "
                  f"median {statistics.median(firsts) / first_alone:5.2f}x, p95 {p95(firsts) / first_alone:5.2f}x of "
                  f"alone; in CPU time median {statistics.median(firsts_cpu) / first_alone_cpu:5.2f}x, p95 "
                  f"{p95(firsts_cpu) / first_alone_cpu:5.2f}x" + (f" | code2wav calls {len(rows)}, one row "
                                                                   f"{rows.count(1) / len(rows):.0%}" if rows else ""))
            if qwen2_5:  # 50 codec ids per audio second
                print(f"        audio s per CPU s concurrent {rate(con, con_cpu, 1) / 50:6.3f}, sequential "
                      f"{rate(seq, seq_cpu, 1) / 50:6.3f}; codes/s per CPU s {rate(con, con_cpu, 1):6.1f} vs "
                      f"{rate(seq, seq_cpu, 1):6.1f}")


if __name__ == "__main__":
    main()
