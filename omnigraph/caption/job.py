"""The local job: one loaded LocalExecutor, files decoded one at a time ahead of the model (a thread), and their
windows run concurrently, at most `batch_size` in flight, so the Thinker batches them. A file's record is
committed as soon as its last window ends; Ctrl-C cancels the windows in flight and keeps every commit."""
from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..runtime.errors import NodeFailed, RunCancelled
from .assemble import FileAssembler
from .decoded import Decoded, decode_item
from .inputs import Item
from .runner import WindowRunner, failure_reason

DECODED_AHEAD = 2  # files decoded and waiting for the model


@dataclass(frozen=True)
class JobOptions:
    batch_size: int
    window_seconds: float
    seed: int


def run_local(executor: Any, items: Iterable[Item], options: JobOptions, assembler: FileAssembler,
              commit: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
    """Caption `items`, handing each finished record to `commit`; RunCancelled once `stop` is set."""
    runner = WindowRunner(executor)
    decoded: queue.Queue[Decoded | None] = queue.Queue(DECODED_AHEAD)
    decoder = threading.Thread(target=_decode_all, args=(items, options.window_seconds, decoded, stop),
                               name="og-caption-decode", daemon=True)
    slots = threading.Semaphore(options.batch_size)
    lock = threading.Lock()
    failure: list[BaseException] = []

    def finish(record: dict[str, Any] | None) -> None:
        if record is not None:
            commit(record)

    def one_window(file: Decoded, window) -> None:
        try:
            result = runner.run(file.samples, window, file.item.id, file.item.prompt, options.seed)
            with lock:
                record = assembler.window_done(file.item.id, window.index, result)
        except RunCancelled:
            return
        except NodeFailed as exc:
            with lock:
                record = assembler.window_failed(file.item.id, window.index, window.start, window.end,
                                                 failure_reason(exc))
        except BaseException as exc:  # noqa: BLE001 - ends the job below, after the windows in flight
            failure.append(exc)
            stop.set()
            return
        finally:
            slots.release()
        try:
            with lock:
                finish(record)
        except BaseException as exc:  # noqa: BLE001 - a commit that fails (disk full) ends the job
            failure.append(exc)
            stop.set()

    decoder.start()
    pool = ThreadPoolExecutor(options.batch_size, thread_name_prefix="og-caption-window")
    try:
        while not stop.is_set():
            try:
                file = decoded.get(timeout=0.2)
            except queue.Empty:
                continue
            if file is None:
                break
            if file.error is not None:
                with lock:
                    finish(assembler.failed(file.item, file.error, file.decode_s))
                continue
            with lock:
                assembler.begin(file.item, len(file.windows), file.audio_seconds, file.decode_s)
            for window in file.windows:
                while not slots.acquire(timeout=0.2):
                    if stop.is_set():
                        break
                if stop.is_set():
                    break
                pool.submit(one_window, file, window)
    finally:
        if stop.is_set():
            runner.cancel_all()
        pool.shutdown(wait=True)
        runner.cancel_all()
        runner.close()
        _drain(decoded)
        decoder.join(timeout=60)
    if failure:
        raise failure[0]
    if stop.is_set():
        raise RunCancelled("interrupted")


def _decode_all(items: Iterable[Item], window_seconds: float, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if stop.is_set():
                return
            file = decode_item(item, window_seconds)
            while not stop.is_set():
                try:
                    out.put(file, timeout=0.2)
                    break
                except queue.Full:
                    continue
    finally:
        while True:
            try:
                out.put(None, timeout=0.2)
                return
            except queue.Full:
                if stop.is_set():
                    _drain(out)


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
