"""Putting a file's record together as its windows come back, in any order, from any worker: the record is
ready once every window has a result (or one failed)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .inputs import Item
from .records import WindowResult, error_record, ok_record


@dataclass
class _Pending:
    item: Item
    windows: int
    audio_seconds: float
    decode_s: float
    started: float = field(default_factory=time.perf_counter)
    results: dict[int, WindowResult] = field(default_factory=dict)
    error: str | None = None
    reported: int = 0


class FileAssembler:
    """Per file in flight: `begin` it, then `window_done`/`window_failed` for each window; each returns the
    finished record once the file's last window is in, else None."""

    def __init__(self, model: dict[str, Any], settings: dict[str, Any]):
        self.model, self.settings = model, settings
        self._pending: dict[str, _Pending] = {}

    def settings_for(self, item: Item) -> dict[str, Any]:
        return {**self.settings, "prompt": item.prompt if item.prompt is not None else self.settings.get("prompt")}

    def failed(self, item: Item, reason: str, decode_s: float, audio_seconds: float | None = None) -> dict[str, Any]:
        """The record of a file that failed before any window ran (decoding, no audio)."""
        return error_record(item, reason, audio_seconds, {"decode_s": decode_s, "wall_s": 0.0}, self.model,
                            self.settings_for(item))

    def begin(self, item: Item, windows: int, audio_seconds: float, decode_s: float) -> None:
        self._pending[item.id] = _Pending(item, windows, audio_seconds, decode_s)

    def window_done(self, item_id: str, index: int, result: WindowResult) -> dict[str, Any] | None:
        pending = self._pending[item_id]
        pending.results[index] = result
        return self._maybe_finish(pending)

    def window_failed(self, item_id: str, index: int, start: float, end: float, reason: str) -> dict[str, Any] | None:
        pending = self._pending[item_id]
        if pending.error is None:
            pending.error = f"window {index} ({start:.2f}-{end:.2f} s): {reason}"
        pending.reported += 1
        return self._maybe_finish(pending)

    def holds(self, item_id: str) -> bool:
        """Whether the file has begun and is not finished."""
        return item_id in self._pending

    def _maybe_finish(self, pending: _Pending) -> dict[str, Any] | None:
        if len(pending.results) + pending.reported < pending.windows:
            return None
        del self._pending[pending.item.id]
        timings = {"decode_s": pending.decode_s, "wall_s": time.perf_counter() - pending.started}
        settings = self.settings_for(pending.item)
        if pending.error is not None:
            return error_record(pending.item, pending.error, pending.audio_seconds, timings, self.model, settings)
        windows = [pending.results[i] for i in range(pending.windows)]
        return ok_record(pending.item, windows, pending.audio_seconds, timings, self.model, settings)
