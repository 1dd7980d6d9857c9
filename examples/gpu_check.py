"""Everything that needs a GPU, in one command: run it whenever a CUDA machine is at hand.

    python examples/gpu_check.py [--checkpoint DIR] [--no-small] [--skip-tests] [--skip-bench] [--timeout S]

1. the parity tests (tests/**/test_*parity*.py and the qwen3_omni graph tests): their graph-level runs use CUDA,
   since the local executor's device is `auto`, in the checkpoints' dtype (float32 for the test checkpoints, so
   the fp32 tolerances stay); their model-level comparisons stay on the CPU where a test loads models itself;
2. `omnigraph run qwen3_omni --device cuda` end to end, on the tiny default checkpoint (float32) and on a fresh
   `small` one (bfloat16, so `dtype: auto` must pick bfloat16) or on --checkpoint DIR; every node that computes
   in a dtype must report device cuda in result.json;
3. the concurrency benchmark, if examples/bench/concurrency.py exists.

Prints a line per step and exits 1 if any failed, 2 (with a message, no traceback) where torch sees no GPU.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "examples" / "bench" / "concurrency.py"
MEDIA = ROOT / "tests" / "fixtures" / "media"
GRAPH_TESTS = ["tests/test_graphs_qwen3_omni.py"]
RUN_FLAGS = ["--greedy", "--max-new-tokens", "16", "--max-frames", "16", "--input", "text=What do you hear and see?",
             "--input", f"audio={MEDIA / 'speech.wav'}", "--input", f"image={MEDIA / 'picture.png'}"]


@dataclass
class Step:
    """One command; `check` (given the step's output folder) says what is wrong with its result, or ''."""

    name: str
    command: list[str]
    out: Path | None = None
    check: Callable[[Path], str] | None = field(default=None, repr=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, metavar="DIR",
                        help="run qwen3_omni end to end on this checkpoint (default: the tiny one and a small one)")
    parser.add_argument("--no-small", action="store_true", help="do not write and run a `small` bf16 checkpoint")
    parser.add_argument("--skip-tests", action="store_true", help="skip the parity tests")
    parser.add_argument("--skip-bench", action="store_true", help="skip the concurrency benchmark")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="S", help="most seconds per step")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace, work: Path) -> list[Step]:
    """The steps to run, in order (nothing runs here)."""
    python = sys.executable
    steps = []
    if not args.skip_tests:
        parity = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*parity*.py"))
        steps.append(Step("parity tests", [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                           *parity, *GRAPH_TESTS]))
    checkpoints: list[tuple[str, list[str]]] = []
    if args.checkpoint is not None:
        checkpoints.append((f"qwen3_omni on cuda ({args.checkpoint})", ["--checkpoint", str(args.checkpoint)]))
    else:
        checkpoints.append(("qwen3_omni on cuda (tiny, float32)", []))
        if not args.no_small:
            small = work / "small"
            steps.append(Step("write the small checkpoint", [python, "-m", "omnigraph", "make-checkpoint", str(small),
                                                             "--preset", "small"]))
            checkpoints.append(("qwen3_omni on cuda (small, bfloat16)", ["--checkpoint", str(small)]))
    for i, (name, flags) in enumerate(checkpoints):
        out = work / f"run{i}"
        steps.append(Step(name, [python, "-m", "omnigraph", "run", "qwen3_omni", "--device", "cuda", "--out",
                                 str(out), *RUN_FLAGS, *flags], out, check_on_cuda))
    if not args.skip_bench and BENCH.is_file():
        steps.append(Step("concurrency benchmark", [python, str(BENCH)]))
    return steps


def check_on_cuda(out: Path) -> str:
    """What is wrong with a run's result.json: a node computing in a dtype (a model node) not on cuda."""
    try:
        nodes = json.loads((out / "result.json").read_text())["timings"]["nodes"]
    except (OSError, ValueError, KeyError) as exc:
        return f"no readable result.json in {out}: {exc}"
    models = {name: (s.get("device"), s.get("dtype")) for name, s in nodes.items() if s.get("dtype")}
    if not models:
        return "no node reported a dtype"
    off = [f"{name} on {device}" for name, (device, _) in models.items() if device != "cuda"]
    if off:
        return "not on cuda: " + ", ".join(off)
    return ""


def describe(out: Path) -> str:
    nodes = json.loads((out / "result.json").read_text())["timings"]
    dtypes = sorted({s["dtype"] for s in nodes["nodes"].values() if s.get("dtype")})
    return f"wall {nodes['wall_s']:.2f} s, dtypes {', '.join(dtypes)}"


def run_step(step: Step, timeout: float) -> tuple[bool, str]:
    try:
        done = subprocess.run(step.command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"still running after {timeout:.0f} s"
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        return False, f"exit {done.returncode}:\n{tail}"
    if step.check is not None and step.out is not None:
        problem = step.check(step.out)
        return (False, problem) if problem else (True, describe(step.out))
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return True, last


def cuda_problem() -> str:
    """Why this machine cannot run the check ('' if torch sees a GPU)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed here (run this with the project's .venv/bin/python)"
    if not torch.cuda.is_available():
        return (f"torch sees no GPU here (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                f"run this on a machine with CUDA")
    return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = cuda_problem()
    if problem:
        print(f"gpu_check: {problem}", file=sys.stderr)
        return 2
    import torch

    print(f"gpu_check on {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    failed = []
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        for step in plan(args, Path(tmp)):
            t0 = time.perf_counter()
            ok, detail = run_step(step, args.timeout)
            took = time.perf_counter() - t0
            print(f"{'ok    ' if ok else 'FAILED'} {step.name} ({took:.0f} s): {detail}", flush=True)
            if not ok:
                failed.append(step.name)
    print(f"gpu_check: {'all passed' if not failed else 'failed: ' + ', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
