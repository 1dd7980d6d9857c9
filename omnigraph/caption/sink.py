"""OUT, the job's records, written so that a crash loses at most the files in flight and nothing is written twice.

Every record is one JSON line, written with a single `write` and then `fsync`ed, in OUT itself (`.jsonl`) or,
for a `.parquet` OUT, in a journal beside it (`.OUT.journal.jsonl`) that is folded into the Parquet file
(rewritten whole, to a temporary name, then renamed) when the job ends or stops. A process killed while writing
leaves at most a last line without its newline: the next open cuts it off, so that file is captioned again.
Replacing a record (--retry-failed) rewrites the JSONL file the same way. A lock (`.OUT.lock`) keeps a second
job out of the same OUT; `OUT.errors.jsonl` lists the error records, appended as they come and rewritten at
the end.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from ..runtime.errors import UserError
from .records import arrow_schema, from_arrow_row

SUFFIXES = (".jsonl", ".parquet")


def check_out(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise UserError(f"--out '{out}': give a .jsonl or .parquet file (the extension chooses the format)")


def side_file(out: Path, suffix: str) -> Path:
    """OUT's companion files: `captions.jsonl` -> `captions.errors.jsonl`, `captions.summary.json`."""
    return out.with_suffix(suffix)


class RecordSink:
    """`with RecordSink(out, resume=..., retry_failed=...) as sink`: `sink.records` (id -> record) holds what
    is committed; `sink.commit(record)` adds one (replacing the record of that id, if any)."""

    def __init__(self, out: Path, *, resume: bool = False, retry_failed: bool = False):
        check_out(out)
        self.out = out
        self.parquet = out.suffix.lower() == ".parquet"
        self.journal = out.with_name(f".{out.name}.journal.jsonl") if self.parquet else out
        self.errors_file = side_file(out, ".errors.jsonl")
        self.continuing = resume or retry_failed
        self.records: dict[str, dict[str, Any]] = {}
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._errors_fd: int | None = None
        self._changed = False  # records committed since opening: the companions are rewritten on close

    def __enter__(self) -> RecordSink:
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._lock()
            self._read_existing()
        except OSError as exc:
            self.close()
            raise UserError(f"cannot write --out '{self.out}': {exc.strerror or exc}; choose a writable path") from None
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def commit(self, record: dict[str, Any]) -> None:
        """Write `record` durably; an id already committed is replaced in place (the file rewritten)."""
        replacing = record["id"] in self.records
        self.records[record["id"]] = record
        self._changed = True
        if replacing and not self.parquet:
            self._rewrite_jsonl()
        else:
            _append_line(self._journal_fd(), record)
        if record["status"] == "error":
            if self._errors_fd is None:
                self._errors_fd = os.open(self.errors_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            _append_line(self._errors_fd, record)

    def close(self) -> None:
        """Fold the journal into the Parquet file, rewrite OUT.errors.jsonl from the records, unlock."""
        try:
            if self.parquet and (self._changed or self.journal.exists()):  # also a journal a killed job left
                self._write_parquet()
            if self._changed:
                _replace_lines(self.errors_file, [r for r in self.records.values() if r["status"] == "error"])
                self._changed = False
        finally:
            for fd in (self._fd, self._errors_fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._errors_fd = self._lock_fd = None

    # -- opening ----------------------------------------------------------------------------------------
    def _lock(self) -> None:
        lock = self.out.with_name(f".{self.out.name}.lock")
        self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"--out '{self.out}' is in use by another omnigraph caption job (pid {holder}); wait "
                            f"for it to end, or choose another --out") from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)

    def _read_existing(self) -> None:
        if self.parquet and self.out.exists():
            self.records.update((r["id"], r) for r in _read_parquet(self.out))
        if self.journal.exists():
            self.records.update((r["id"], r) for r in _read_jsonl(self.journal))
        if self.records and not self.continuing:
            raise UserError(f"--out '{self.out}' already holds {len(self.records)} records; pass --resume to caption "
                            f"only the files it lacks, --retry-failed to rerun its errors, or choose another --out")
        if not self.continuing:
            self.errors_file.unlink(missing_ok=True)  # a fresh job: no errors of an earlier one

    # -- writing ----------------------------------------------------------------------------------------
    def _journal_fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _rewrite_jsonl(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _replace_lines(self.out, list(self.records.values()))

    def _write_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        staged = self.out.with_name(f".{self.out.name}.partial")
        pq.write_table(pa.Table.from_pylist(list(self.records.values()), schema=arrow_schema()), staged)
        _fsync_path(staged)
        os.replace(staged, self.out)
        self.journal.unlink(missing_ok=True)  # every journal record is in the Parquet file now


def _append_line(fd: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
    while data:  # one write for a regular file; a short write only on a full disk, which then raises
        data = data[os.write(fd, data):]
    os.fsync(fd)


def _replace_lines(path: Path, records: list[dict[str, Any]]) -> None:
    staged = path.with_name(f".{path.name}.partial")
    with staged.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, path)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The committed records; a last line cut short by a kill (no newline) is removed from the file."""
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    records = []
    for number, line in enumerate(data[:whole].decode("utf-8", errors="replace").splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "id" not in record or "status" not in record:
            raise UserError(f"{path}:{number}: not a caption record; --out must be a file written by omnigraph "
                            f"caption (or a new one)")
        records.append(record)
    if whole < len(data):
        with path.open("r+b") as f:
            f.truncate(whole)
    return records


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"--out '{path}' is not a readable Parquet file ({exc}); choose another --out") from None
    if rows and not {"id", "status"} <= rows[0].keys():
        raise UserError(f"--out '{path}' is not a caption output (no id/status columns); choose another --out")
    return [from_arrow_row(r) for r in rows]
