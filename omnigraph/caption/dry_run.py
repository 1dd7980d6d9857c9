"""`--dry-run`: what would run (each file's length and window count, from its header when it gives one) and the
total, with a time estimate from a short calibration: one batch of windows through the loaded graph."""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .decoded import decode_item
from .inputs import Item
from .job import JobOptions

CALIBRATION_WINDOWS = 4  # at most, taken from the first files that decode


def dry_run(items: list[Item], graph: Any, checkpoint: Any, options: JobOptions, device: str,
            stop: threading.Event) -> None:
    total, windows, unknown = 0.0, 0, 0
    for item in items:
        seconds = _declared_seconds(Path(item.path))
        if seconds is None:
            unknown += 1
            print(f"{item.id}  {item.path}  (length unknown until decoded)")
            continue
        n = max(1, math.ceil(seconds / options.window_seconds))
        total, windows = total + seconds, windows + n
        print(f"{item.id}  {item.path}  {seconds:.2f} s  {n} window{'s' * (n != 1)}")
    print(f"{len(items)} files, {total / 3600:.4f} audio-hours in about {windows} windows"
          + (f" (+{unknown} of unknown length)" if unknown else ""))
    rate = _calibrate(items, graph, checkpoint, options, device, stop)
    if rate:
        print(f"calibration: {rate:.2f} audio-s per s with {options.batch_size} windows in flight; "
              f"estimate {total / rate / 60:.1f} min for the known length")
    else:
        print("calibration: no file decoded, no estimate")


def _declared_seconds(path: Path) -> float | None:
    import av

    from ..nodes.media_decode.decode import declared_seconds, streams_of

    try:
        with av.open(str(path), metadata_errors="replace") as container:
            _, audio = streams_of(container)
            return None if audio is None else declared_seconds(container, [audio])
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None


def _calibrate(items: list[Item], graph: Any, checkpoint: Any, options: JobOptions, device: str,
               stop: threading.Event) -> float | None:
    """Audio seconds captioned per wall second for up to CALIBRATION_WINDOWS windows run at once."""
    from ..runtime.executor_local import LocalExecutor
    from .runner import WindowRunner

    batch = []
    for item in items:
        file = decode_item(item, options.window_seconds)
        batch += [(file, w) for w in file.windows][:CALIBRATION_WINDOWS - len(batch)]
        if len(batch) >= CALIBRATION_WINDOWS:
            break
    if not batch:
        return None
    executor = LocalExecutor(graph, device=device, checkpoint=checkpoint)
    runner = WindowRunner(executor)
    try:
        executor.load(stop=stop)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(min(len(batch), options.batch_size)) as pool:
            list(pool.map(lambda fw: runner.run(fw[0].samples, fw[1], fw[0].item.id, fw[0].item.prompt,
                                                options.seed), batch))
        return sum(w.end - w.start for _, w in batch) / (time.perf_counter() - t0)
    finally:
        runner.close()
        executor.shutdown()
