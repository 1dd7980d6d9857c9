"""Ctrl-C for a command line run: the work runs in a worker thread and the main thread only waits, so SIGINT
never lands inside an import, a weight load or a file write. On Ctrl-C the work is asked to stop (the run is
cancelled, loading stops between nodes, nothing is committed) and waited for, with a bound, before the
command exits: no thread is left running torch while the interpreter shuts down."""
from __future__ import annotations

import signal
import threading
import time
from typing import Callable, TypeVar

from .errors import RunCancelled

T = TypeVar("T")
STOP_GRACE = 60.0  # seconds the main thread waits for the work to stop after Ctrl-C
# How often the waiting main thread wakes. A SIGINT the kernel hands to another thread (the main thread blocks it
# while the worker starts, and any library thread may take it) only sets Python's flag: the main thread runs the
# handler, and so raises KeyboardInterrupt, the next time it wakes.
WAKE_EVERY = 0.2


class StopRequest:
    """Set by the main thread on Ctrl-C; the worker checks it at safe points and registers what to cancel."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._cancels: list[Callable[[], None]] = []

    def is_set(self) -> bool:
        return self.event.is_set()

    def check(self) -> None:
        """Raise RunCancelled if Ctrl-C was pressed (call it where stopping leaves nothing half done)."""
        if self.event.is_set():
            raise RunCancelled("interrupted")

    def on_stop(self, cancel: Callable[[], None]) -> None:
        """Call `cancel` when Ctrl-C is pressed (at once, if it already was)."""
        with self._lock:
            self._cancels.append(cancel)
            stopped = self.event.is_set()
        if stopped:
            cancel()

    def request(self) -> None:
        with self._lock:
            self.event.set()
            cancels = list(self._cancels)
        for cancel in cancels:
            cancel()


def run_interruptibly(work: Callable[[StopRequest], T], grace: float = STOP_GRACE) -> T:
    """`work(stop)` in a worker thread. Ctrl-C (KeyboardInterrupt in the main thread, which only waits) sets
    `stop`; this then waits up to `grace` s (or a second Ctrl-C) for the work to end and raises KeyboardInterrupt,
    unless the work still completed: work that got past its last `stop.check()` finishes and counts, and a Ctrl-C
    after the work ended changes nothing."""
    stop = StopRequest()
    done = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # the default mask, for processes it starts
        try:
            outcome["value"] = work(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            outcome["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name="og-command", daemon=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # a Ctrl-C before this escapes: nothing started
    try:
        try:
            worker.start()  # not interruptible: once in this `try`, the work is running
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        wait_for(done)
    except KeyboardInterrupt:
        if not done.is_set():  # else the work had ended already: its own outcome stands
            stop.request()
            try:
                wait_for(done, grace)
            except KeyboardInterrupt:
                pass  # a second Ctrl-C: stop waiting
            if "value" not in outcome:
                raise KeyboardInterrupt from None
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def wait_for(done: threading.Event, bound: float = float("inf")) -> None:
    """Wait for `done` up to `bound` s, waking every WAKE_EVERY s so a pending Ctrl-C is raised here."""
    deadline = time.monotonic() + bound
    while not done.wait(min(WAKE_EVERY, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return
