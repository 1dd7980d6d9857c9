"""The job on Ray Data: files are decoded and cut into windows by CPU tasks (`flat_map`), windows are captioned
by a pool of `--workers` actors (`map_batches`), each loading the graph once through a LocalExecutor and running
the `--batch-size` windows of each batch it is given concurrently, so they batch. Ray Data streams with bounded
in-flight blocks, so memory stays flat however large the collection; the driver assembles records as windows
come back and commits them through the same sink as the local job (so --resume works the same).

Each actor reserves the largest `num_cpus`, `num_gpus` and `memory` any node of the graph asks for in its
placement (`num_gpus` only when the cluster has GPUs; a local Ray started here has a CPU per actor and one for
decoding besides). Ray restarts an actor that dies and retries its batch; a window that kills actors twice
becomes an error record (see `CaptionWorker`)."""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable

from ..runtime.errors import RunCancelled, UserError
from .assemble import FileAssembler
from .decoded import decode_item
from .inputs import Item
from .job import JobOptions
from .records import WindowResult

STOP_POLL = 0.2  # seconds between looks at Ctrl-C while waiting for rows


def run_ray(graph: Any, checkpoint: Any, items: list[Item], options: JobOptions, assembler: FileAssembler,
            commit: Callable[[dict[str, Any]], None], stop: threading.Event, *, address: str | None,
            workers: int, device: str) -> None:
    """Caption `items` on Ray Data (see the module doc); RunCancelled once `stop` is set."""
    import ray

    owns = _connect(ray, address, graph, workers)
    try:
        cpus, gpus, memory = _actor_resources(ray, graph)
        rows = [{"id": i.id, "path": i.path, "prompt": i.prompt, "source": i.source} for i in items]
        if not rows:
            return
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the job's own progress display says how far it is
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 200))
        ds = ds.flat_map(_decode_rows, fn_kwargs={"window_seconds": options.window_seconds}, num_cpus=0.5)
        pool = ray.data.ActorPoolStrategy(size=workers)
        ds = ds.map_batches(CaptionWorker, batch_size=options.batch_size, compute=pool, num_cpus=cpus, num_gpus=gpus,
                            memory=memory, batch_format="pyarrow",
                            fn_constructor_kwargs={"graph": graph, "checkpoint": _path(checkpoint), "device": device,
                                                   "seed": options.seed, "batch_size": options.batch_size,
                                                   "ledger": ray.remote(num_cpus=0)(Ledger).remote()})
        items_by_id = {i.id: i for i in items}
        for row in _rows_until(ds, stop):
            record = _take(row, items_by_id[row["id"]], assembler)
            if record is not None:
                commit(record)
    finally:
        if owns:
            ray.shutdown()


class CaptionWorker:
    """A pool actor: the graph loaded once; each call captions a batch of windows at once. Ray restarts an actor
    that dies and retries its batch; a retried batch runs its windows one at a time, and a window that killed
    the actor while running alone (its second kill) becomes an error instead of running again."""

    def __init__(self, graph: Any, checkpoint: str | None, device: str, seed: int, batch_size: int, ledger: Any):
        from ..runtime.executor_local import LocalExecutor
        from .runner import WindowRunner

        self.executor = LocalExecutor(graph, device=device, checkpoint=checkpoint)
        self.executor.load()
        self.runner = WindowRunner(self.executor)
        self.seed, self.batch_size, self.ledger = seed, batch_size, ledger

    def __call__(self, batch):
        """A pyarrow table of windows (and decode errors) -> a table of their results (`_result_schema`)."""
        import pyarrow as pa
        import ray

        rows = batch.to_pylist()
        keys = [f"{r['id']}:{r['index']}" for r in rows]
        if ray.get(self.ledger.attempt.remote(keys)) == 1:
            with ThreadPoolExecutor(max(1, min(len(rows), self.batch_size))) as pool:
                done = list(pool.map(self._one, rows))
        else:
            done = [self._alone(row, key) for row, key in zip(rows, keys)]
        return pa.Table.from_pylist([{**{k: r[k] for k in _PASSED}, **d} for r, d in zip(rows, done)],
                                    schema=_result_schema())

    def _alone(self, row: dict[str, Any], key: str) -> dict[str, Any]:
        import ray

        if not ray.get(self.ledger.start_alone.remote(key)):
            return {"text": None, "tokens": None, "node_seconds": None,
                    "error": "it killed the model worker twice (a crash below Python, e.g. out of memory); "
                             "not retried"}
        result = self._one(row)
        ray.get(self.ledger.end_alone.remote(key))
        return result

    def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from ..runtime.errors import NodeFailed
        from .runner import failure_reason
        from .windows import Window

        if row["error"] is not None:
            return {"text": None, "tokens": None, "node_seconds": None}
        window = Window(row["index"], 0, len(row["samples"]) // 4, 16000)
        samples = np.frombuffer(row["samples"], np.float32)
        try:
            result = self.runner.run(samples, window, row["id"], row["prompt"], self.seed)
        except NodeFailed as exc:
            return {"text": None, "tokens": None, "node_seconds": None, "error": failure_reason(exc)}
        return {"text": result.text, "tokens": result.tokens, "node_seconds": json.dumps(result.node_seconds)}


class Ledger:
    """What the pool's actors started, surviving their deaths (an actor of its own, reserving no CPU)."""

    def __init__(self) -> None:
        self.attempts: dict[tuple[str, ...], int] = {}
        self.alone: set[str] = set()  # windows started alone whose run has not ended

    def attempt(self, keys: list[str]) -> int:
        """1 for a batch's first try, more for Ray's retries after its actor died."""
        batch = tuple(keys)
        self.attempts[batch] = self.attempts.get(batch, 0) + 1
        return self.attempts[batch]

    def start_alone(self, key: str) -> bool:
        """False if this window was started alone before and never ended: it killed its actor."""
        if key in self.alone:
            return False
        self.alone.add(key)
        return True

    def end_alone(self, key: str) -> None:
        self.alone.discard(key)


_PASSED = ("id", "index", "windows", "start", "end", "audio_seconds", "decode_s", "error")


def _result_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("index", pa.int64()), ("windows", pa.int64()), ("start", pa.float64()),
                      ("end", pa.float64()), ("audio_seconds", pa.float64()), ("decode_s", pa.float64()),
                      ("error", pa.string()), ("text", pa.string()), ("tokens", pa.int64()),
                      ("node_seconds", pa.string())])


def _decode_rows(row: dict[str, Any], window_seconds: float) -> list[dict[str, Any]]:
    """A CPU task: one file -> a row per window (its samples as float32 bytes), or one row with the error."""
    item = Item(row["id"], row["path"], row["prompt"], row["source"])
    file = decode_item(item, window_seconds)
    base = {"id": item.id, "prompt": item.prompt, "decode_s": file.decode_s, "audio_seconds": file.audio_seconds,
            "windows": len(file.windows)}
    if file.error is not None:
        return [{**base, "index": -1, "start": 0.0, "end": 0.0, "samples": b"", "error": file.error}]
    return [{**base, "index": w.index, "start": w.start, "end": w.end, "error": None,
             "samples": file.samples[w.first:w.last].tobytes()} for w in file.windows]


def _rows_until(ds: Any, stop: threading.Event) -> Iterable[dict[str, Any]]:
    """The dataset's rows as they stream back; RunCancelled within STOP_POLL s of `stop` being set, even while
    no row arrives (the rows are pulled by a helper thread)."""
    rows: queue.Queue = queue.Queue(maxsize=64)
    end = object()

    def pull() -> None:
        try:
            for row in ds.iter_rows():
                rows.put(row)
            rows.put(end)
        except BaseException as exc:  # noqa: BLE001 - raised in the job's thread below
            rows.put(exc)

    threading.Thread(target=pull, name="og-caption-ray-rows", daemon=True).start()
    while True:
        try:
            row = rows.get(timeout=STOP_POLL)
        except queue.Empty:
            row = None
        if stop.is_set():
            raise RunCancelled("interrupted")
        if row is end:
            return
        if isinstance(row, BaseException):
            raise row
        if row is not None:
            yield row


def _take(row: dict[str, Any], item: Item, assembler: FileAssembler) -> dict[str, Any] | None:
    """One window's result (or a file's decode error) in; the file's record out once it is complete."""
    if row["index"] < 0:
        return assembler.failed(item, row["error"], row["decode_s"])
    if not assembler.holds(item.id):
        assembler.begin(item, row["windows"], row["audio_seconds"], row["decode_s"])
    if row["error"] is not None:
        return assembler.window_failed(item.id, row["index"], row["start"], row["end"], row["error"])
    result = WindowResult(row["start"], row["end"], row["text"], row["tokens"], json.loads(row["node_seconds"]))
    return assembler.window_done(item.id, row["index"], result)


def _connect(ray: Any, address: str | None, graph: Any, workers: int) -> bool:
    """Join `address` (or $RAY_ADDRESS), else start a local Ray; True when this job started or joined it."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise UserError(f"--ray-address '{address}': cannot connect to the Ray cluster ({exc})") from None
        return True
    cpus = max(os.cpu_count() or 1, workers * _placement_max(graph, "num_cpus", 1.0) + 1)
    ray.init(num_cpus=int(cpus + 0.999), include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    return True


def _actor_resources(ray: Any, graph: Any) -> tuple[float, float, int | None]:
    gpus = _placement_max(graph, "num_gpus", 0.0) if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    memory = _placement_max(graph, "memory", 0) or None
    return _placement_max(graph, "num_cpus", 1.0), gpus, memory


def _placement_max(graph: Any, field: str, default: float) -> float:
    values = [getattr(n.placement, field, None) for n in graph.nodes.values()]
    return max([v for v in values if v is not None] or [default])


def _path(checkpoint: Any) -> str | None:
    return None if checkpoint is None else str(Path(checkpoint).expanduser().resolve())
