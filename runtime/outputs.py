"""A run's outputs as files of its run folder: one file per output, plus result.json with everything as JSON and
the run's status ("ok", or "failed" with the error)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .graph import Graph
from .payloads import Payload, jsonable
from .run_folder import RESULT_FILE, RunFolder
from .run_result import RunResult

RESERVED = frozenset({"graph", "graph_file", "status", "error", "seed", "inputs", "outputs", "files", "missing",
                      "timings"})


def write_outputs(graph: Graph, result: RunResult, folder: RunFolder, extra: dict[str, Any] | None = None) -> dict:
    """Text as NAME.txt, audio as NAME.wav, anything else as NAME.json, staged in `folder` (commit moves them in
    place); returns what result.json holds, with each file named at its place in the folder.

    result.json has every output under "outputs" and, unless its name is reserved, at the top level too.
    """
    files, values = {}, {}
    for name in graph.outputs:
        if name not in result.outputs:
            continue
        value = result.joined(name)
        values[name] = jsonable(value)
        if isinstance(value, list) and not value:  # an empty stream that has no empty form (no audio at all)
            continue
        suffix = value.file_suffix if isinstance(value, Payload) else ".json"
        stem = folder.staging / (f"{name}_output" if f"{name}{suffix}" == RESULT_FILE else name)
        if isinstance(value, Payload):
            written = value.save(stem)
        else:
            written = stem.with_suffix(".json")
            written.write_text(json.dumps(jsonable(value), indent=1))
        files[name] = str(folder.path / written.name)
    summary = {"graph": graph.name, "graph_file": graph.file, "status": "ok", **(extra or {})}
    summary.update({name: value for name, value in values.items() if name not in RESERVED})  # e.g. token ids
    summary.update({"outputs": values, "files": files, "missing": result.missing,
                    "timings": result.stats.to_json()})
    _write_result(folder, summary)
    return summary


def write_failure(graph: Graph, error: BaseException, folder: RunFolder, extra: dict[str, Any] | None = None) -> None:
    """A result.json that says the run failed, and why (staged: it replaces the folder's earlier run files)."""
    _write_result(folder, {"graph": graph.name, "graph_file": graph.file, "status": "failed", "error": str(error),
                           **(extra or {}), "outputs": {}, "files": {}})


def _write_result(folder: RunFolder, summary: dict[str, Any]) -> None:
    Path(folder.staging / RESULT_FILE).write_text(json.dumps(summary, indent=1))
