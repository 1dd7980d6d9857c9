"""`omnigraph caption` throughput on a generated collection (the `small` checkpoint unless --checkpoint), against
  - a plain loop through one loaded LocalExecutor, the same windows one at a time (what batching buys),
  - a shell loop of `omnigraph run captioner --input audio=FILE` per file (what a user would script; run on
    the first --shell-files files),
  - `--executor ray` with 1 and with 2 workers (scaling; not pinned).
The local variants run pinned to one core (os.sched_setaffinity, one torch thread), so any gain is batching.

    python examples/bench/caption_throughput.py [--n 200] [--tokens 256] [--batch-size 16] [--checkpoint DIR]

Files/s are steady-state: commits after the first, over the time since the first (load and start-up left
out; on Ray, commits come a batch of windows at a time, so use a collection of many batches). Greedy
decoding with random weights runs every window to --tokens, so every variant does the same work; the released
Captioner writes a long description (hundreds of tokens) per window, which is what --tokens 256 stands for.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

CLI = [sys.executable, "-m", "omnigraph"]


def collection(folder: Path, n: int) -> list[Path]:
    """n clips of 0.5 to 95 s (one in ten longer than 30 s), noise bursts at a speech-like rhythm."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        seconds = float(rng.uniform(31, 95)) if i % 10 == 0 else float(rng.uniform(0.5, 12))
        t = np.arange(int(seconds * 16000)) / 16000
        x = (0.2 * rng.standard_normal(len(t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
        paths.append(folder / f"clip{i:04d}.wav")
        soundfile.write(paths[-1], x, 16000)
    return paths


def watch(process: subprocess.Popen, out: Path) -> list[float]:
    """Times at which OUT gained lines, until the process ends (polled every 10 ms)."""
    times, seen = [], 0
    while True:
        ended = process.poll() is not None
        count = out.read_bytes().count(b"\n") if out.exists() else 0
        times += [time.perf_counter()] * (count - seen)
        seen = count
        if ended:
            return times
        time.sleep(0.01)


def steady(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else float("nan")


def caption_cli(folder: Path, out: Path, flags: list[str], env: dict) -> tuple[float, float, dict]:
    for p in out.parent.glob(out.stem + "*"):
        p.unlink()
    t0 = time.perf_counter()
    process = subprocess.Popen([*CLI, "caption", str(folder), "--out", str(out), *flags], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    times = watch(process, out)
    err = process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"caption failed ({process.returncode}):\n{err[-3000:]}")
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    return steady(times), time.perf_counter() - t0, summary


def plain_loop(paths: list[Path], checkpoint, tokens: int, window_seconds: float) -> tuple[float, float]:
    """The same windows, one run at a time, through one loaded LocalExecutor: (files/s steady, wall)."""
    from omnigraph.caption.decoded import decode_item
    from omnigraph.caption.inputs import file_item
    from omnigraph.runtime.executor_local import LocalExecutor
    from omnigraph.runtime.validate import load_graph

    graph = load_graph("captioner", overrides={("*", "greedy"): True, ("*", "max_new_tokens"): tokens})
    t0 = time.perf_counter()
    executor = LocalExecutor(graph, device="cpu", checkpoint=checkpoint)
    executor.load()
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            file = decode_item(file_item(path), window_seconds)
            for w in file.windows:
                wav = Path(scratch) / "w.wav"
                soundfile.write(wav, file.samples[w.first:w.last], 16000, subtype="FLOAT")
                executor.run({"audio": str(wav)})
            times.append(time.perf_counter())
    executor.shutdown()
    return steady(times), time.perf_counter() - t0


def shell_loop(paths: list[Path], tokens: int, env: dict, scratch: Path, checkpoint: Path) -> tuple[float, float]:
    """One `omnigraph run captioner` process per file (a failed one is reported and counted as done)."""
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        done = subprocess.run([*CLI, "run", "captioner", "--input", f"audio={path}", "--greedy", "--max-new-tokens",
                               str(tokens), "--checkpoint", str(checkpoint), "--device", "cpu",
                               "--out", str(scratch / f"run{i}")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            print(f"  (omnigraph run on {path.name} exited {done.returncode}: {done.stderr.strip()[-300:]})")
    wall = time.perf_counter() - t0
    return len(paths) / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="clips in the collection (default 200)")
    parser.add_argument("--tokens", type=int, default=256, help="max_new_tokens per window (default 256)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shell-files", type=int, default=3, help="files the shell loop runs (default 3)")
    parser.add_argument("--checkpoint", type=Path, help="default: the small preset, written once to the cache")
    parser.add_argument("--parts", default="local,shell,ray",
                        help="comma-separated: local (caption vs the plain loop), shell, ray (default all)")
    args = parser.parse_args()
    from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint

    checkpoint = args.checkpoint or default_checkpoint("small")
    work = Path(tempfile.mkdtemp(prefix="omnigraph-bench-caption-"))
    try:
        paths = collection(work / "media", args.n)
        audio = sum(soundfile.info(p).duration for p in paths)
        print(f"{args.n} clips, {audio / 3600:.3f} audio-hours; max_new_tokens {args.tokens}, greedy, "
              f"batch size {args.batch_size}, checkpoint {checkpoint}", flush=True)
        cores = sorted(os.sched_getaffinity(0))
        flags = ["--greedy", "--max-new-tokens", str(args.tokens), "--batch-size", str(args.batch_size),
                 "--checkpoint", str(checkpoint), "--device", "cpu"]
        env1 = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        os.sched_setaffinity(0, {cores[0]})  # one core from here on (children inherit it)
        import torch

        torch.set_num_threads(1)
        parts = set(args.parts.split(","))
        if "local" in parts:
            cap_rate, cap_wall, summary = caption_cli(work / "media", work / "local.jsonl", flags, env1)
            print(f"omnigraph caption (1 core):  {cap_rate:7.3f} files/s steady, wall {cap_wall:6.1f} s, "
                  f"{summary['audio_hours_per_hour']:.1f} audio-h/h, {summary['output_tokens_per_s']:.0f} tok/s, "
                  f"slowest stage {summary['slowest_stage']}", flush=True)
            loop_rate, loop_wall = plain_loop(paths, checkpoint, args.tokens, 30.0)
            print(f"plain LocalExecutor loop:    {loop_rate:7.3f} files/s steady, wall {loop_wall:6.1f} s"
                  f"  -> caption is {cap_rate / loop_rate:.2f}x", flush=True)
        if "shell" in parts:
            shell_rate, shell_wall = shell_loop(paths[:args.shell_files], args.tokens, env1, work, checkpoint)
            print(f"shell loop of omnigraph run: {shell_rate:7.3f} files/s ({args.shell_files} files, "
                  f"{shell_wall:.1f} s)", flush=True)
        os.sched_setaffinity(0, set(cores))
        if "ray" in parts:
            ray_scaling(work, paths, flags, len(cores))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ray_scaling(work: Path, paths: list[Path], flags: list[str], cores: int) -> None:
    rates = {}
    for workers in (1, 2):
        ray_flags = [*flags, "--executor", "ray", "--workers", str(workers)]
        rates[workers], wall, _ = caption_cli(work / "media", work / f"ray{workers}.jsonl", ray_flags,
                                              dict(os.environ))
        print(f"ray, {workers} worker{'s' * (workers > 1)}:              {rates[workers]:7.3f} files/s steady "
              f"(wall {wall:.1f} s with Ray's start-up)", flush=True)
    print(f"ray scaling 1 -> 2 workers: {rates[2] / rates[1]:.2f}x ({cores} cores)")


if __name__ == "__main__":
    main()
