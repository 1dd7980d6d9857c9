"""One window through the graph: its samples written as a WAV (see audio.py) and given as the `audio` input of
a run on a loaded executor; any number of windows may run at once (their Thinker steps are batched)."""
from __future__ import annotations

import tempfile
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .audio import write_window
from .records import WindowResult
from .windows import Window



def failure_reason(exc: Any) -> str:
    """A failed window's reason for its file's record: a node's UserError says it all; else name the node."""
    from ..runtime.errors import UserError

    return str(exc.error) if isinstance(exc.error, UserError) else str(exc)


def window_seed(seed: int, item_id: str, index: int) -> int:
    """The run seed of a window: from --seed, the file's id and the window's place, so a window samples the same
    caption whatever else runs beside it or whenever it is resumed."""
    return zlib.crc32(f"{seed}:{item_id}:{index}".encode()) & 0x7FFFFFFF


class WindowRunner:
    """Runs windows on `executor` (loaded, shared by every window); `cancel_all` stops the ones in flight."""

    def __init__(self, executor: Any, scratch: Path | None = None):
        self.executor = executor
        self._scratch = tempfile.TemporaryDirectory(prefix="omnigraph-caption-", dir=scratch)
        self._runs: set[Any] = set()
        self._lock = threading.Lock()
        self._cancelled = False

    def run(self, samples: np.ndarray, window: Window, item_id: str, prompt: str | None, seed: int) -> WindowResult:
        """Caption `samples[window]`; NodeFailed or RunCancelled as the run raises them."""
        from ..runtime.errors import RunCancelled

        wav = Path(self._scratch.name) / f"{item_id}-{window.index}.wav"
        write_window(samples[window.first:window.last], window.rate, wav)
        inputs = {"audio": str(wav), **({"text": prompt} if prompt is not None else {})}
        try:
            run = self.executor.start(inputs, seed=window_seed(seed, item_id, window.index))
            with self._lock:
                self._runs.add(run)
                cancelled = self._cancelled
            if cancelled:
                run.cancel()
                raise RunCancelled("interrupted")
            try:
                result = run.result()
            finally:
                with self._lock:
                    self._runs.discard(run)
        finally:
            wav.unlink(missing_ok=True)
        text = result.joined("text")
        ids = result.outputs.get("thinker_token_ids")
        walls = {name: s.wall for name, s in result.stats.nodes.items() if s.wall is not None}
        return WindowResult(window.start, window.end, getattr(text, "text", str(text)),
                            len(ids.ids) if ids is not None else None, walls)

    def cancel_all(self) -> None:
        with self._lock:
            self._cancelled = True
            runs = list(self._runs)
        for run in runs:
            run.cancel()

    def close(self) -> None:
        self._scratch.cleanup()
