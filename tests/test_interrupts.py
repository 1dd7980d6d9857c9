"""Ctrl-C at any moment of `omnigraph run` (start-up, imports, loading, the run, writing): exit 130 with
"interrupted", no traceback, no abort, and no result.json. A signal that comes after the outputs landed leaves a
finished run (exit 0, status ok)."""
from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from interrupting import assert_interrupted_or_finished, interrupt_at

from omnigraph.runtime.interrupts import StopRequest, run_interruptibly

RUN = ["-m", "omnigraph", "run", "qwen3_omni", "-i", "text=Say something.", "--max-new-tokens", "8",
       "--max-frames", "8"]
INTERRUPTS = 10
IN_FLIGHT = 2  # as many as CI's cores: a run in flight keeps the pace of the reference runs, so the moments
# drawn over their length land in the same phases of the interrupted runs


def stratified_moments(length: float, count: int, rng: random.Random) -> list[float]:
    """Half a second (the interpreter's own start, ~20 ms idle, comes before omnigraph can catch anything; torch's
    import alone takes longer, so some run is always signalled), then one seeded random moment in each of
    `count - 1` equal slices of (0.5 s, length): every phase of the run (start-up, imports, loading, the run,
    writing) gets its share of the signals, however few they are."""
    width = (length - 0.5) / (count - 1)
    return [0.5] + [0.5 + width * (k + rng.random()) for k in range(count - 1)]


@pytest.mark.timeout(900)  # 12 processes: 81 CPU-s on a loaded machine (30 moments took 210), minutes there
def test_ctrl_c_at_random_moments_of_a_local_run(tmp_path: Path) -> None:
    command = [sys.executable, *RUN]

    def whole(i: int) -> float:
        started = time.perf_counter()
        assert interrupt_at(command, tmp_path / f"whole{i}", 600, tmp_path)[0] == 0
        return time.perf_counter() - started

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        length = min(pool.map(whole, range(IN_FLIGHT)))  # start-up to exit, IN_FLIGHT at a time
        delays = stratified_moments(length, INTERRUPTS, random.Random(20261201))
        outcomes = list(pool.map(lambda i: interrupt_at(command, tmp_path / f"o{i}", delays[i], tmp_path),
                                 range(INTERRUPTS)))
    interrupted = assert_interrupted_or_finished(outcomes, delays)
    # A run signalled while it ran may still finish only if the signal came after its outputs landed (a short
    # window at the end): most signalled runs must stop. Counted on the runs that were signalled, whatever the
    # machine's speed, so a run that ignores Ctrl-C is caught without depending on timing.
    signalled = sum(outcome[3] for outcome in outcomes)
    assert signalled >= 1 and interrupted >= (signalled + 1) // 2, f"{interrupted} of {signalled} signalled runs stopped"


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raising KeyboardInterrupt in this process, whatever the process that started pytest left (a CI
    runner may start it with SIGINT ignored or blocked), restored afterwards."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    yield
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGINT, handler)


def ctrl_c_then(outcome: str, press=lambda: os.kill(os.getpid(), signal.SIGINT)):
    """Work that presses Ctrl-C (on its own process by default), waits (bounded) to be asked to stop, then ends
    as told."""
    def work(stop: StopRequest) -> str:
        press()
        assert stop.event.wait(60), "the main thread did not pass the interrupt on"
        if outcome == "stops":
            stop.check()
        return outcome
    return work


def test_ctrl_c_stops_the_work_at_its_next_check_and_raises_keyboard_interrupt(ctrl_c_raises) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(ctrl_c_then("stops"))


def test_work_past_its_last_check_completes_despite_ctrl_c(ctrl_c_raises) -> None:
    assert run_interruptibly(ctrl_c_then("finishes")) == "finishes"


def test_ctrl_c_taken_by_another_thread_still_stops_the_work(ctrl_c_raises) -> None:
    """The kernel may hand SIGINT to any thread that does not block it (the main thread blocks it while the worker
    starts; torch and Ray start threads of their own): the waiting main thread still raises it."""
    to_worker = lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        run_interruptibly(ctrl_c_then("stops", to_worker))
