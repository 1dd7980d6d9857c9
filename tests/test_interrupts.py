"""Ctrl-C at any moment of `omnigraph run` (start-up, imports, loading, the run, writing): exit 130 with
"interrupted", no traceback, no abort, and no result.json. A signal that comes after the outputs landed leaves a
finished run (exit 0, status ok)."""
from __future__ import annotations

import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from interrupting import assert_interrupted_or_finished, interrupt_at

RUN = ["-m", "omnigraph", "run", "qwen3_omni", "-i", "text=Say something.", "--max-new-tokens", "8",
       "--max-frames", "8"]
INTERRUPTS = 30
IN_FLIGHT = 3


def test_ctrl_c_at_random_moments_of_a_local_run(tmp_path: Path) -> None:
    command = [sys.executable, *RUN]
    started = time.perf_counter()
    assert interrupt_at(command, tmp_path / "whole", 600, tmp_path)[0] == 0
    length = time.perf_counter() - started  # start-up to exit, alone; with others in flight each runs longer
    rng = random.Random(20261201)
    delays = [rng.uniform(0.1, length) for _ in range(INTERRUPTS)]
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        outcomes = list(pool.map(lambda i: interrupt_at(command, tmp_path / f"o{i}", delays[i], tmp_path),
                                 range(INTERRUPTS)))
    assert assert_interrupted_or_finished(outcomes, delays) >= INTERRUPTS // 2
