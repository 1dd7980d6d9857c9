"""The record of one input file, as written to OUT: the same keys for every record, ok or error.

`windows` lists each window's `start` and `end` (seconds in the file), `text` and `tokens` (generated token
count); `caption` is their texts in order, joined by newlines; `timings` holds the file's `decode_s`, `wall_s`
(first window started to last ended) and per graph node the seconds summed over its windows (`nodes`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .inputs import Item

FIELDS = ("id", "path", "status", "error", "windows", "caption", "audio_seconds", "timings", "model", "settings")


@dataclass(frozen=True)
class WindowResult:
    """What one window's run gave: its text and token count, and each node's wall seconds."""

    start: float
    end: float
    text: str
    tokens: int | None
    node_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 6), "end": round(self.end, 6), "text": self.text, "tokens": self.tokens}


def ok_record(item: Item, windows: list[WindowResult], audio_seconds: float, timings: dict[str, Any],
              model: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.id, "path": item.path, "status": "ok", "error": None,
            "windows": [w.to_json() for w in windows], "caption": "\n".join(w.text for w in windows),
            "audio_seconds": round(audio_seconds, 6), "timings": _with_nodes(timings, windows),
            "model": model, "settings": settings}


def error_record(item: Item, reason: str, audio_seconds: float | None, timings: dict[str, Any],
                 model: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.id, "path": item.path, "status": "error", "error": reason, "windows": [], "caption": None,
            "audio_seconds": None if audio_seconds is None else round(audio_seconds, 6),
            "timings": _with_nodes(timings, []), "model": model, "settings": settings}


def _with_nodes(timings: dict[str, Any], windows: list[WindowResult]) -> dict[str, Any]:
    nodes: dict[str, float] = {}
    for w in windows:
        for name, seconds in w.node_seconds.items():
            nodes[name] = nodes.get(name, 0.0) + seconds
    return {**{k: round(v, 6) for k, v in timings.items()}, "nodes": {k: round(v, 6) for k, v in nodes.items()}}


def arrow_schema():
    """The Parquet columns: the same fields, typed (per-node seconds as a map, so any graph's nodes fit)."""
    import pyarrow as pa

    window = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string()),
                        ("tokens", pa.int64())])
    timings = pa.struct([("decode_s", pa.float64()), ("wall_s", pa.float64()),
                         ("nodes", pa.map_(pa.string(), pa.float64()))])
    model = pa.struct([("graph", pa.string()), ("graph_file", pa.string()), ("checkpoint", pa.string())])
    settings = pa.struct([("window_seconds", pa.float64()), ("seed", pa.int64()), ("prompt", pa.string()),
                          ("greedy", pa.bool_()), ("max_new_tokens", pa.int64()), ("temperature", pa.float64()),
                          ("top_p", pa.float64()), ("top_k", pa.int64())])
    return pa.schema([("id", pa.string()), ("path", pa.string()), ("status", pa.string()), ("error", pa.string()),
                      ("windows", pa.list_(window)), ("caption", pa.string()), ("audio_seconds", pa.float64()),
                      ("timings", timings), ("model", model), ("settings", settings)])


def from_arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record read back from Parquet, as it was written (maps come back as lists of pairs)."""
    timings = dict(row.get("timings") or {})
    timings["nodes"] = dict(timings.get("nodes") or [])
    return {**row, "timings": timings}
