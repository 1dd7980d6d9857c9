"""Manifests: JSONL, CSV or Parquet with a `path` column and optional `id` and `prompt` columns (other columns
are ignored). Relative paths are taken from the manifest's folder. A bad row is a UserError naming file:row."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..runtime.errors import UserError
from .inputs import Item, file_item


class ManifestRow(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    path: str = Field(min_length=1)
    id: str | int | None = None
    prompt: str | None = None


def read_manifest(path: Path) -> Iterable[Item]:
    rows = {".jsonl": _jsonl_rows, ".csv": _csv_rows, ".parquet": _parquet_rows}[path.suffix.lower()](path)
    for where, row in rows:
        try:
            parsed = ManifestRow.model_validate(row)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
            raise UserError(f"{where}: bad manifest row ({problems}); each row needs a 'path' (text) and may have "
                            f"an 'id' and a 'prompt'") from None
        file = Path(parsed.path).expanduser()
        file = file if file.is_absolute() else path.parent / file
        item_id = None if parsed.id is None else str(parsed.id)
        if item_id is not None and not item_id.strip():
            raise UserError(f"{where}: the id is empty; give a non-empty id or leave the column out")
        yield file_item(file, item_id, parsed.prompt, where)


def _jsonl_rows(path: Path) -> Iterable[tuple[str, Any]]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path}:{number}: not a JSON object ({exc}); a JSONL manifest has one object per "
                            f"line, e.g. {{\"path\": \"a.wav\"}}") from None


def _csv_rows(path: Path) -> Iterable[tuple[str, Any]]:
    reader = csv.DictReader(_read_text(path).splitlines())
    if reader.fieldnames is None or "path" not in reader.fieldnames:
        raise UserError(f"{path}:1: a CSV manifest needs a header row with a 'path' column (found: "
                        f"{', '.join(reader.fieldnames or []) or 'no header'})")
    for row in reader:
        yield f"{path}:{reader.line_num}", {k: (v if v != "" else None) for k, v in row.items() if k is not None}


def _parquet_rows(path: Path) -> Iterable[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path}: cannot read this Parquet manifest ({exc})") from None
    if "path" not in table.column_names:
        raise UserError(f"{path}: a Parquet manifest needs a 'path' column (found: {', '.join(table.column_names)})")
    for number, row in enumerate(table.to_pylist(), start=1):
        yield f"{path}:row {number}", row


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read manifest '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"manifest '{path}' is not UTF-8 text; save it as UTF-8") from None
