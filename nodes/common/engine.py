"""Continuous batching for one loaded decoder model: every concurrent run's sequence is served by one
scheduler thread, so a decode step reads the weights once for the whole batch.

Sequences join and leave between decode steps. A newcomer's prompt is prefilled between decode steps of the
others, `prefill_chunk` positions at a time, so a long prompt does not stall everyone. Newcomers that arrive
together are prefilled in one step as long as their chunks fit in `prefill_chunk` positions (the first always
runs), so their first tokens share one head and the decode batch fills at once, not one sequence per step;
whole prompts that start in the same step go in one right-padded model call (`prefill_many`) while the padded
batch fits in `prefill_chunk` positions.
Each sequence keeps its own sampling parameters, generator, stop ids and budget; a finished, cancelled
(`cancelled` set) or abandoned (its consumer stopped reading) sequence frees its cache slot at once. At most
`max_batch` sequences hold a slot; later ones wait for one. The thread starts with the first request and ends
when no work is left (the cache, sized by what was generated, goes with it). `close` (also run at interpreter
exit) ends every sequence and waits for the thread, so no torch work is running while the interpreter
finalizes (which aborts the process).

The model is anything with `new_cache()`, `prefill(cache, rows, request, start, count) -> hidden [1, C]` (of
the chunk's last position), `decode(cache, rows, tokens [B], requests) -> hidden [B, C]` and `head(hidden [N, C])
-> logits [N, V]` (see thinker/batch_model.py); optionally `best_head(hidden [N, C], ks) -> logits [N, V]` exact
at least where row n's ks[n] best logits are (the others may be -inf; used when every row's choice reads only
its few best, sampling.py `best_read`), and `prefill_many(cache, rows, requests) -> hidden [B, C]`
(whole prompts in empty slots, `rows` from `cache.rows(slots, counts)`; a model without it, or a batch it fails,
prefills one by one). Each step runs one head for all its sequences: the decode batch's
rows, then the sequences whose prompts were just prefilled (a wide vocabulary head costs about as much for a few
rows as for one, so newcomers' first tokens ride on the others' step). The engine does scheduling, sampling,
delivery and cancellation. Tokens reach a run once per step, in one device-to-host transfer for the whole batch.
"""
from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

import torch

from ...runtime.daemon_threads import start_daemon
from ...runtime.device import adopt_thread_count

from .decode_buffers import TokenHistory
from .kv_cache import KVCache, Rows
from .sampling import SamplingParams, best_read, sample_rows

PREFILL_CHUNK = 256  # prompt positions per prefill call between decode steps
MAX_PADDING = 0.5  # the most of a padded prefill batch that may be padding (prompts starting together)
CLOSE_WAIT = 10.0  # seconds `close` waits for the scheduler thread to end (one step and the cleanup)


@dataclass(eq=False)
class GenerationRequest:
    """One sequence to generate: `prompt_len` positions to prefill, then up to `max_new_tokens` tokens."""

    prompt_len: int
    max_new_tokens: int
    params: SamplingParams
    generator: torch.Generator | None
    stop_ids: frozenset[int]
    cancelled: threading.Event
    prompt_ids: torch.Tensor | None = None  # what the repetition penalty sees before the first token
    state: Any = None  # the model's own inputs (embeddings, positions, ...)
    slot: int = -1
    generated: int = 0
    abandoned: bool = False
    history: TokenHistory | None = None
    last: torch.Tensor | None = None  # [1] the token to feed next
    prefilled: int = 0
    outbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)

    @property
    def gone(self) -> bool:
        return self.abandoned or self.cancelled.is_set()


class BatchModel(Protocol):
    def new_cache(self) -> KVCache: ...

    def prefill(self, cache: KVCache, rows: Rows, request: GenerationRequest, start: int,
                count: int) -> torch.Tensor: ...

    def decode(self, cache: KVCache, rows: Rows, tokens: torch.Tensor,
               requests: list[GenerationRequest]) -> torch.Tensor: ...

    def head(self, hidden: torch.Tensor) -> torch.Tensor: ...


class BatchingEngine:
    def __init__(self, model: BatchModel, max_batch: int, prefill_chunk: int = PREFILL_CHUNK):
        self.model, self.max_batch, self.prefill_chunk = model, max_batch, prefill_chunk
        self._lock = threading.Lock()
        self._inbox: deque[GenerationRequest] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.peak_batch = 0  # the most sequences that held a slot at once (for tests and benchmarks)
        atexit.register(_close_at_exit, weakref.ref(self))

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """End every sequence (their runs get what was generated so far) and wait, at most `timeout`, for the
        scheduler thread; later requests are refused."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def submit(self, request: GenerationRequest) -> Iterator[int]:
        """Queue `request` now; -> its token ids as the engine produces them (a stop id is yielded)."""
        if request.max_new_tokens > 0:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the batching engine is closed (the process is exiting)")
                self._inbox.append(request)
                if self._thread is None:
                    self._thread = start_daemon(self._serve, "batching-engine")
        else:
            request.outbox.put(("end", None))
        return self._tokens(request)

    def _tokens(self, request: GenerationRequest) -> Iterator[int]:
        try:
            while True:
                kind, value = request.outbox.get()
                if kind == "token":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            request.abandoned = True

    def _serve(self) -> None:
        adopt_thread_count()
        waiting: deque[GenerationRequest] = deque()
        prefilling: deque[GenerationRequest] = deque()
        decoding: list[GenerationRequest] = []
        try:
            with torch.inference_mode():
                self._loop(waiting, prefilling, decoding)
        except BaseException as e:  # a bug of the engine or the model: no request may wait forever
            with self._lock:
                waiting.extend(self._inbox)
                self._inbox.clear()
                self._thread = None
            for r in (*waiting, *prefilling, *decoding):
                r.outbox.put(("error", e))
            raise

    def _loop(self, waiting: deque[GenerationRequest], prefilling: deque[GenerationRequest],
              decoding: list[GenerationRequest]) -> None:
        cache = self.model.new_cache()
        while True:
            with self._lock:
                waiting.extend(self._inbox)
                self._inbox.clear()
                if self._closed:
                    for r in waiting:
                        r.outbox.put(("end", None))
                    for r in (*prefilling, *decoding):
                        self._finish(cache, r)
                    waiting.clear()
                    prefilling.clear()
                    decoding.clear()
                if not (waiting or prefilling or decoding):
                    self._thread = None
                    return
            for r in [r for r in waiting if r.gone]:
                waiting.remove(r)
                r.outbox.put(("end", None))
            for group in (prefilling, decoding):
                for r in [r for r in group if r.gone]:
                    group.remove(r)
                    self._finish(cache, r)
            while waiting and len(prefilling) + len(decoding) < self.max_batch:
                r = waiting.popleft()
                r.slot = cache.add(r.prompt_len + r.max_new_tokens)
                prefilling.append(r)
            self.peak_batch = max(self.peak_batch, len(prefilling) + len(decoding))
            rows, hidden = [], []  # this step's sequences and their last hidden states: one head for all
            if decoding:
                decoding.sort(key=lambda r: r.slot)  # consecutive slots read the cache as a view
                try:
                    hidden.append(self._decode(cache, decoding))
                    rows += decoding
                except Exception as e:  # the model failed on this batch: each of its sequences gets the error
                    for r in decoding:
                        self._finish(cache, r, e)
                decoding.clear()
            budget = self.prefill_chunk  # prompt positions this step prefills, over all its newcomers
            one_by_one = False  # a padded batch failed: this step's other newcomers go alone
            while prefilling and (budget == self.prefill_chunk or self._next_chunk(prefilling[0]) <= budget):
                together = [] if one_by_one else self._whole_prompts(prefilling, budget)
                if len(together) > 1:
                    last = self._prefill_together(cache, together)
                    one_by_one = last is None
                    if last is not None:
                        for _ in together:
                            prefilling.popleft()
                        budget -= len(together) * max(r.prompt_len for r in together)
                        rows += together
                        hidden.append(last)
                        continue
                r = prefilling[0]
                budget -= self._next_chunk(r)
                try:
                    last = self._prefill_chunk(cache, r)
                except Exception as e:  # this sequence's input: the others go on
                    prefilling.popleft()
                    self._finish(cache, r, e)
                    continue
                if last is None:  # a long prompt: its next chunk waits for the next step
                    break
                prefilling.popleft()
                rows.append(r)
                hidden.append(last)
            if rows:
                logits = self._head(torch.cat(hidden) if len(hidden) > 1 else hidden[0], rows)
                keep = self._deliver(cache, rows, *self._choose(logits, rows))
                decoding += [r for r, k in zip(rows, keep) if k]

    def _next_chunk(self, r: GenerationRequest) -> int:
        """Positions of r's next prefill chunk (chunks start at multiples of `prefill_chunk`, as alone)."""
        return min(self.prefill_chunk, r.prompt_len - r.prefilled)

    def _whole_prompts(self, prefilling: deque[GenerationRequest], budget: int) -> list[GenerationRequest]:
        """The newcomers at the front not prefilled yet whose whole prompts, right-padded to the longest, fit in
        `budget` positions with at most MAX_PADDING of them padding."""
        if not hasattr(self.model, "prefill_many"):
            return []
        together, longest, real = [], 0, 0
        for r in prefilling:
            longest, real = max(longest, r.prompt_len), real + r.prompt_len
            padded = (len(together) + 1) * longest
            if r.prefilled or padded > budget or padded - real > MAX_PADDING * padded:
                break
            together.append(r)
        return together

    def _prefill_together(self, cache: KVCache, rs: list[GenerationRequest]) -> torch.Tensor | None:
        """Prefill the whole prompts of rs in one call; -> their last hidden states [B, C], or None if the
        batch failed (each is then prefilled alone, so only a bad input's own run gets its error)."""
        try:
            last = self.model.prefill_many(cache, cache.rows([r.slot for r in rs], [r.prompt_len for r in rs]), rs)
        except Exception:
            return None
        for r in rs:
            self._prompt_in(r, last.device)
        return last

    def _prefill_chunk(self, cache: KVCache, r: GenerationRequest) -> torch.Tensor | None:
        """Prefill the next chunk of r's prompt; -> the last position's hidden state [1, C] once the whole prompt
        is in."""
        count = self._next_chunk(r)
        rows = cache.rows([r.slot], count)
        last = self.model.prefill(cache, rows, r, r.prefilled, count)
        if r.prefilled + count < r.prompt_len:
            r.prefilled += count
            return None
        self._prompt_in(r, last.device)
        return last

    @staticmethod
    def _prompt_in(r: GenerationRequest, device: torch.device) -> None:
        """r's whole prompt is in the cache: a run with a repetition penalty starts its history."""
        r.prefilled = r.prompt_len
        if r.params.repetition_penalty != 1.0:
            r.history = TokenHistory(device, r.prompt_ids)

    def _decode(self, cache: KVCache, rs: list[GenerationRequest]) -> torch.Tensor:
        rows = cache.rows([r.slot for r in rs], 1)
        return self.model.decode(cache, rows, torch.cat([r.last for r in rs]), rs)

    def _head(self, hidden: torch.Tensor, rs: list[GenerationRequest]) -> torch.Tensor:
        """The step's logits [N, V]: only the best ones each row reads where the model can (`best_head`)."""
        ks = [best_read(r.params) for r in rs]
        if None in ks or not hasattr(self.model, "best_head"):
            return self.model.head(hidden)
        return self.model.best_head(hidden, ks)

    def _choose(self, logits: torch.Tensor, rs: list[GenerationRequest]) -> tuple[torch.Tensor, list[int]]:
        """Next token of each row [B] (on the device) and the same as host ints (one transfer)."""
        tokens = sample_rows(logits, [r.params for r in rs], [r.generator for r in rs],
                             [None if r.history is None else r.history.view() for r in rs])
        return tokens, tokens.tolist()

    def _deliver(self, cache: KVCache, rs: list[GenerationRequest], tokens: torch.Tensor,
                 ids: list[int]) -> list[bool]:
        """Hand each row its token; -> per row, whether it goes on decoding."""
        keep = []
        for i, (r, token) in enumerate(zip(rs, ids)):
            r.generated += 1
            r.last = tokens[i:i + 1]
            if r.history is not None:
                r.history.append(r.last)
            r.outbox.put(("token", token))
            more = token not in r.stop_ids and r.generated < r.max_new_tokens and not r.gone
            if not more:
                self._finish(cache, r)
            keep.append(more)
        return keep

    def _finish(self, cache: KVCache, r: GenerationRequest, error: Exception | None = None) -> None:
        cache.free(r.slot)
        r.outbox.put(("end", None) if error is None else ("error", error))


def _close_at_exit(engine: weakref.ref[BatchingEngine]) -> None:
    alive = engine()
    if alive is not None:
        alive.close()
