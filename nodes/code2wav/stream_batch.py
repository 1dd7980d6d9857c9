"""Concurrent runs' Code2Wav streams decoded together: each run's next chunk (its frames, its slot of the shared
`StreamState`) is one StepBatcher item, and the server thread decodes every waiting chunk in as few calls as
the shapes allow: one call per (chunk length, phase), so runs in steady state with equal chunk_frames are one
call of B rows, and a newcomer's first chunk or a last partial chunk is a call of its own kind.

Lockstep (StepBatcher): a stream that got its samples reads its next frames at once, so the next batch waits
for it, unless it waits for frames not yet produced or for its consumer (`frames` and `away` mark it away
meanwhile): streams whose frames are there stay one batch, and none waits behind a stream that waits. A
stream's first chunk is urgent: it is decoded before the others' next chunks, not behind them. A stream whose
next frame is known to be on its way (`coming`: a fused Talker computed it in one batch with other runs' frames,
runtime/loops.py) is waited for, within StepBatcher's bound, so those runs' chunks are one call, not split by the
order their frames arrive in.

A run's slot is taken with its first chunk and given back by `release` (at the end of its stream, on an error
or a cancel), at once; when no stream is left the state goes too. All calls of a batch run before any of them
commits, so a batch that fails changes no stream, and StepBatcher's one-by-one retry stays exact.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from ..common.step_batcher import StepBatcher
from .model import Code2Wav
from .stream_state import StreamState

@dataclass(eq=False)
class Stream:
    """One run's stream; `slot` is its place in the shared state (-1 before its first chunk)."""

    run_id: str = ""
    slot: int = -1


@dataclass(frozen=True)
class Chunk:
    stream: Stream
    frames: list[list[int]]  # [T][G] codes


class StreamBatcher:
    def __init__(self, model: Code2Wav, max_batch: int, name: str):
        self.model = model
        self._lock = threading.Lock()  # the state: taken by a batch and by `release`
        self._state: StreamState | None = None
        self._runs_lock = threading.Lock()  # `_runs`: taken by `coming` (a Talker's thread) and by `release`
        self._runs: dict[str, Stream] = {}  # the live streams by run id
        self.batcher = StepBatcher(self.decode_batch, max_batch, name, lockstep=True)

    def frames(self, stream: Stream, frames: Iterable) -> Iterator:
        """`frames`, the stream away from the batcher while it waits for each."""
        with self._runs_lock:
            self._runs[stream.run_id] = stream
        items = iter(frames)
        for index in itertools.count():
            self.away(stream)
            try:
                item = next(items)
            except StopIteration:
                return
            self.batcher.back(stream, index)
            yield item

    def coming(self, notices: list[tuple[str, int]]) -> None:
        """Frames (run id, index in its stream) on their way to the live streams: batches wait for them."""
        with self._runs_lock:
            for run_id, index in notices:
                stream = self._runs.get(run_id)
                if stream is not None:
                    self.batcher.coming(stream, index)

    def away(self, stream: Stream) -> None:
        """The stream waits for something else than this batcher (its frames, its consumer)."""
        self.batcher.away(stream)

    def decode(self, stream: Stream, frames: list[list[int]]) -> torch.Tensor:
        """The stream's next samples [N] float32 on the CPU, decoded with the other runs' waiting chunks."""
        return self.batcher.call(Chunk(stream, frames), stream, urgent=stream.slot < 0)  # a first chunk goes first

    def release(self, stream: Stream) -> None:
        with self._runs_lock:  # no notice reaches this stream after this
            if self._runs.get(stream.run_id) is stream:
                del self._runs[stream.run_id]
        self.batcher.leave(stream)  # this run calls no more: the next batch need not wait for it
        with self._lock:
            if stream.slot >= 0 and self._state is not None:
                self._state.free(stream.slot)
                if not self._state.live:
                    self._state = None
            stream.slot = -1

    def decode_batch(self, chunks: list[Chunk]) -> list[torch.Tensor]:
        """Several streams' next chunks (at most one each) -> their samples (what the server thread runs)."""
        with self._lock:
            if self._state is None:
                self._state = self.model.new_state()
            state = self._state
            for chunk in chunks:
                if chunk.stream.slot < 0:
                    chunk.stream.slot = state.add()
            calls: dict[tuple[int, int], list[int]] = {}  # (frames, phase) -> the chunks' positions
            for i in sorted(range(len(chunks)), key=lambda i: chunks[i].stream.slot):  # slots in order: views
                slot = chunks[i].stream.slot
                calls.setdefault((len(chunks[i].frames), self.model.phase(state.frames(slot))), []).append(i)
            steps = state.begin([([chunks[i].stream.slot for i in members], T) for (T, _), members in calls.items()])
            results: list[torch.Tensor] = [torch.empty(0)] * len(chunks)
            for members, step in zip(calls.values(), steps):
                codes = torch.tensor([chunks[i].frames for i in members], dtype=torch.long,
                                     device=self.model.code_offset.device).transpose(1, 2)  # [B, G, T]
                samples = self.model(codes, step).float().cpu()  # [B, N]
                for row, i in enumerate(members):
                    results[i] = samples[row].clone()
            for step in steps:
                step.commit()
            return results
