"""The job's progress on stderr: a tqdm bar on a terminal (files, windows, audio-hours, ETA, tokens/s, errors),
else a plain line every PLAIN_EVERY seconds and one at the end."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from .summary import Tally

PLAIN_EVERY = 10.0


class Progress:
    def __init__(self, tally: Tally, stream: TextIO | None = None):
        self.tally = tally
        self.stream = stream or sys.stderr
        self._bar = None
        self._last = time.perf_counter()
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=tally.total, unit="file", file=self.stream, dynamic_ncols=True)

    def update(self) -> None:
        """After each committed record."""
        if self._bar is not None:
            self._bar.set_postfix_str(self._figures(), refresh=False)
            self._bar.update(self.tally.done + self.tally.failed - self._bar.n)
        elif time.perf_counter() - self._last >= PLAIN_EVERY:
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._line()

    def _line(self) -> None:
        t = self.tally
        self._last = time.perf_counter()
        print(f"caption: {t.done + t.failed}/{t.total} files, {self._figures()}, {t.elapsed:.0f} s",
              file=self.stream, flush=True)

    def _figures(self) -> str:
        t = self.tally
        return (f"{t.windows} windows, {t.audio_seconds / 3600:.3f} audio-h, "
                f"{t.tokens / max(t.elapsed, 1e-9):.1f} tok/s, {t.failed} errors")
