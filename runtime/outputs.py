"""Writing a run's outputs to a folder: one file per output, plus result.json with everything as JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UserError
from .run_result import RunResult
from .graph import Graph
from .payloads import Payload, jsonable

RESULT_FILE = "result.json"
RESERVED = frozenset({"graph", "graph_file", "seed", "inputs", "outputs", "files", "missing", "timings"})


def write_outputs(graph: Graph, result: RunResult, out_dir: Path, extra: dict[str, Any] | None = None) -> dict:
    """Text as NAME.txt, audio as NAME.wav, anything else as NAME.json; returns what result.json holds.

    result.json has every output under "outputs" and, unless its name is reserved, at the top level too.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder '{out_dir}': {exc}") from exc
    files, values = {}, {}
    for name in graph.outputs:
        if name not in result.outputs:
            continue
        value = result.joined(name)
        values[name] = jsonable(value)
        if isinstance(value, list) and not value:  # an empty stream that has no empty form (no audio at all)
            continue
        suffix = value.file_suffix if isinstance(value, Payload) else ".json"
        stem = out_dir / (f"{name}_output" if f"{name}{suffix}" == RESULT_FILE else name)
        if isinstance(value, Payload):
            files[name] = str(value.save(stem))
        else:
            path = stem.with_suffix(".json")
            path.write_text(json.dumps(jsonable(value), indent=1))
            files[name] = str(path)
    summary = {"graph": graph.name, "graph_file": graph.file, **(extra or {})}
    summary.update({name: value for name, value in values.items() if name not in RESERVED})  # e.g. token ids
    summary.update({"outputs": values, "files": files, "missing": result.missing,
                    "timings": result.stats.to_json()})
    (out_dir / RESULT_FILE).write_text(json.dumps(summary, indent=1))
    return summary
