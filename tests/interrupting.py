"""Sending Ctrl-C to `omnigraph run` processes at chosen moments, and checking how each ended."""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path


def sigint_default() -> None:
    """Popen preexec_fn: the child starts with SIGINT at its default, whatever this process inherited (a runner
    that starts the tests in the background, or with nohup, leaves SIGINT ignored, and an ignored signal stays
    ignored across exec: Python would then never turn Ctrl-C into KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_at(command: list[str], out: Path, delay: float, cwd: Path, env: dict | None = None) -> tuple:
    """Start `command --out out`, send SIGINT after `delay` s unless it ended; its exit code, stderr, result and
    whether the signal was sent (the process was still running then)."""
    process = subprocess.Popen([*command, "--out", str(out)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    signalled = False
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        signalled = True
    _, err = process.communicate(timeout=180)
    result = out / "result.json"
    return process.returncode, err, json.loads(result.read_text()) if result.exists() else None, signalled


def assert_interrupted_or_finished(outcomes: list[tuple], delays: list[float]) -> int:
    """Every run exited 130 cleanly or finished whole; returns how many were interrupted."""
    interrupted = 0
    for (code, err, result, _), delay in zip(outcomes, delays):
        where = f"SIGINT after {delay:.2f} s: exit {code}\n{err[-2000:]}"
        assert "Traceback" not in err and "terminate called" not in err, where
        if code == 130:
            interrupted += 1
            assert "interrupted" in err and result is None, where
        else:
            assert code == 0 and result is not None and result["status"] == "ok", where
    return interrupted
