"""OUT's records: committed durably one per file, a line cut short by a kill dropped on reopening, replaced in
place on --retry-failed, Parquet folded from its journal, and one job at a time."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from omnigraph.caption.sink import RecordSink
from omnigraph.runtime.errors import UserError


def record(id: str, status: str = "ok") -> dict:
    return {"id": id, "path": f"{id}.wav", "status": status, "error": None if status == "ok" else "bad",
            "windows": [], "caption": "", "audio_seconds": 1.0, "timings": {"nodes": {}}, "model": {}, "settings": {}}


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def abandon(sink: RecordSink) -> None:
    """Close the sink's files without folding anything, as a killed process leaves them."""
    for fd in (sink._fd, sink._errors_fd, sink._lock_fd):
        if fd is not None:
            os.close(fd)
    sink._fd = sink._errors_fd = sink._lock_fd = None


def test_a_record_cut_short_by_a_kill_is_dropped_and_the_rest_kept(tmp_path):
    out = tmp_path / "o.jsonl"
    with RecordSink(out) as sink:
        for name in ("a", "b"):
            sink.commit(record(name))
    line = json.dumps(record("c"))
    with out.open("a") as f:
        f.write(line[: len(line) // 2])  # what a kill in the middle of writing the third record leaves
    with RecordSink(out, resume=True) as sink:
        assert set(sink.records) == {"a", "b"}
        sink.commit(record("c"))
    assert ids(out) == ["a", "b", "c"]


def test_an_existing_output_needs_resume_and_a_foreign_file_is_refused(tmp_path):
    out = tmp_path / "o.jsonl"
    with RecordSink(out) as sink:
        sink.commit(record("a"))
    with pytest.raises(UserError, match="already holds 1 records; pass --resume"):
        RecordSink(out).__enter__()
    (tmp_path / "x.jsonl").write_text('{"something": 1}\n')
    with pytest.raises(UserError, match=r"x\.jsonl:1: not a caption record"):
        RecordSink(tmp_path / "x.jsonl", resume=True).__enter__()
    assert (tmp_path / "x.jsonl").read_text() == '{"something": 1}\n'


def test_retry_replaces_an_error_record_in_place(tmp_path):
    out = tmp_path / "o.jsonl"
    with RecordSink(out) as sink:
        sink.commit(record("a", "error"))
        sink.commit(record("b"))
    assert ids(out.with_suffix(".errors.jsonl")) == ["a"]
    with RecordSink(out, retry_failed=True) as sink:
        sink.commit(record("a"))
        sink.commit(record("c"))
    assert ids(out) == ["a", "b", "c"]
    assert [json.loads(x)["status"] for x in out.read_text().splitlines()] == ["ok"] * 3
    assert out.with_suffix(".errors.jsonl").read_text() == ""


def test_parquet_is_folded_from_its_journal_and_resumed(tmp_path):
    out = tmp_path / "o.parquet"
    with RecordSink(out) as sink:
        sink.commit(record("a"))
        journal = tmp_path / ".o.parquet.journal.jsonl"
        assert ids(journal) == ["a"] and not out.exists()
    assert [r["id"] for r in pq.read_table(out).to_pylist()] == ["a"] and not journal.exists()
    sink = RecordSink(out, resume=True).__enter__()
    sink.commit(record("b"))
    abandon(sink)  # as if killed here: the journal holds b, the Parquet file only a
    with RecordSink(out, resume=True) as again:
        assert set(again.records) == {"a", "b"}
    assert sorted(r["id"] for r in pq.read_table(out).to_pylist()) == ["a", "b"]


def test_a_second_job_on_the_same_output_is_refused(tmp_path):
    out = tmp_path / "o.jsonl"
    with RecordSink(out):
        with pytest.raises(UserError, match="in use by another omnigraph caption job"):
            RecordSink(out, resume=True).__enter__()
