"""What a node may know about the run it is part of (seed, cancellation), without per-run state on itself."""
from __future__ import annotations

import contextvars
import hashlib
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunContext:
    """Per-run facts visible to the node code running in it."""

    run_id: str
    node: str
    seed: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)

    def node_seed(self) -> int:
        """A seed derived from the run seed and the node name: stable across runs and executors."""
        digest = hashlib.sha256(f"{self.seed}:{self.node}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("omnigraph_run", default=None)


def current_run() -> RunContext:
    """The context of the run the calling node code belongs to (a neutral one outside any run)."""
    return _current.get() or RunContext(run_id="none", node="none")


def enter_run(context: RunContext) -> None:
    _current.set(context)
