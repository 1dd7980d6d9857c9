"""Counting a job as it goes (what the progress display shows) and its summary, OUT.summary.json."""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Tally:
    """Files done, failed and skipped, audio and tokens of the files done, seconds per stage (graph nodes summed
    over windows, plus the job's own `decode`)."""

    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    windows: int = 0
    audio_seconds: float = 0.0
    tokens: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            ok = record["status"] == "ok"
            self.done += ok
            self.failed += not ok
            self.windows += len(record["windows"])
            self.audio_seconds += (record["audio_seconds"] or 0.0) if ok else 0.0
            self.tokens += sum(w["tokens"] or 0 for w in record["windows"])
            timings = record["timings"]
            stages = {"decode": timings.get("decode_s") or 0.0, **timings.get("nodes", {})}
            for name, seconds in stages.items():
                self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + seconds

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def summary(self, interrupted: bool) -> dict[str, Any]:
        wall = max(self.elapsed, 1e-9)
        slowest = max(self.stage_seconds.items(), key=lambda kv: kv[1], default=(None, 0.0))
        return {
            "done": self.done, "failed": self.failed, "skipped": self.skipped,
            "not_started": max(0, self.total - self.done - self.failed), "interrupted": interrupted,
            "windows": self.windows, "audio_hours": round(self.audio_seconds / 3600, 6),
            "wall_s": round(wall, 3), "files_per_s": round((self.done + self.failed) / wall, 4),
            "audio_hours_per_hour": round(self.audio_seconds / wall, 3),
            "output_tokens_per_s": round(self.tokens / wall, 2),
            "slowest_stage": slowest[0], "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    staged = path.with_name(f".{path.name}.partial")
    staged.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(staged, path)
