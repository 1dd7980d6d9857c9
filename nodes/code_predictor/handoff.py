"""Frames a fused Talker computed for this code predictor (nodes/talker/server.py), waiting for the request
that asks for each, by run: the Talker puts frame s before it yields request s; the code predictor's thread of
that run takes it when request s arrives. A run's leftovers go when either side of it ends cancelled."""
from __future__ import annotations

import threading
from collections import defaultdict, deque


class Handoff:
    def __init__(self):
        self._lock = threading.Lock()
        self._frames: defaultdict[str, deque[tuple[int, tuple[int, ...]]]] = defaultdict(deque)

    def put(self, run_id: str, index: int, codes: tuple[int, ...]) -> None:
        with self._lock:
            self._frames[run_id].append((index, codes))

    def take(self, run_id: str, index: int) -> tuple[int, ...]:
        with self._lock:
            frames = self._frames.get(run_id)
            if not frames or frames[0][0] != index:
                raise RuntimeError(f"code predictor: frame request {index} of run {run_id} has no frame from the "
                                   f"fused talker (next held: {frames[0][0] if frames else 'none'})")
            codes = frames.popleft()[1]
            if not frames:
                del self._frames[run_id]
            return codes

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._frames.pop(run_id, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(map(len, self._frames.values()))
