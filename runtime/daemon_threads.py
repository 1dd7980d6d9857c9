"""The daemon threads of the runtime and its nodes, stopped and joined (within a bound) when the process exits.

A daemon thread still inside torch's C++ code while the interpreter finalises can abort the process ("terminate
called without an active exception", exit status 134): e.g. a script that ends without shutting its executor
down, right after its last result, while a node's thread or a batching engine is still winding down. So every
such thread is started by `start_daemon`, and at exit the objects given to `stop_at_exit` are stopped (a run
still going stops at its next channel operation), then every live thread is joined, all within `EXIT_WAIT`.
"""
from __future__ import annotations

import atexit
import threading
import time
import weakref
from typing import Any, Callable

EXIT_WAIT = 10.0  # seconds the process waits at exit for its daemon threads, in all

_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_stoppable: weakref.WeakSet[Any] = weakref.WeakSet()


def start_daemon(target: Callable[..., Any], name: str, args: tuple = ()) -> threading.Thread:
    """Start a daemon thread that the process joins when it exits."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    _threads.add(thread)
    thread.start()
    return thread


def stop_at_exit(obj: Any) -> None:
    """Call `obj.stop()` when the process exits (before its threads are joined), if obj is still alive then."""
    _stoppable.add(obj)


def _join_at_exit() -> None:
    for obj in list(_stoppable):
        obj.stop()
    deadline = time.monotonic() + EXIT_WAIT
    current = threading.current_thread()
    for thread in list(_threads):
        if thread is not current:
            thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_join_at_exit)  # registered at import, before any engine's or batcher's close: it runs after them
