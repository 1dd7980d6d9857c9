"""Listing a captioning job's inputs: folders recursed by content, globs, manifests, deterministic ids."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile

from omnigraph.caption.inputs import list_items
from omnigraph.runtime.errors import UserError


def wav(path: Path, seconds: float = 0.2, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(int(seconds * 16000), np.float32), 16000, format=fmt)
    return path


def names(items) -> list[str]:
    return [Path(i.path).name for i in items]


def test_folders_are_recursed_and_media_found_by_content(tmp_path):
    wav(tmp_path / "b.wav")
    wav(tmp_path / "deep" / "er" / "a.flac", fmt="FLAC")
    wav(tmp_path / "recording", fmt="WAV")  # no extension
    (tmp_path / "notes.txt").write_text("text")
    (tmp_path / "picture.png").write_bytes(Path("tests/fixtures/media/picture.png").read_bytes())
    wav(tmp_path / ".hidden.wav")
    wav(tmp_path / ".cache" / "c.wav")
    assert names(list_items([str(tmp_path)])) == ["b.wav", "recording", "a.flac"]


def test_ids_are_stable_and_change_with_the_file(tmp_path):
    path = wav(tmp_path / "a.wav")
    first = list_items([str(path)])[0].id
    assert list_items([str(tmp_path / "." / "a.wav")])[0].id == first  # the resolved path counts
    os.utime(path, ns=(1, 1))
    assert list_items([str(path)])[0].id != first


def test_globs_and_the_same_file_twice(tmp_path):
    for name in ("x1.wav", "x2.wav", "y.wav"):
        wav(tmp_path / name)
    items = list_items([str(tmp_path / "x*.wav"), str(tmp_path / "x1.wav")])
    assert names(items) == ["x1.wav", "x2.wav"]
    with pytest.raises(UserError, match="matches no file"):
        list_items([str(tmp_path / "z*.wav")])
    with pytest.raises(UserError, match="does not exist"):
        list_items([str(tmp_path / "nope.wav")])


def test_manifests_jsonl_csv_parquet_with_ids_prompts_and_relative_paths(tmp_path):
    wav(tmp_path / "media" / "a.wav")
    rows = [{"path": "media/a.wav", "id": "A", "prompt": "hi"}, {"path": str(tmp_path / "media" / "b.wav")}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    with (tmp_path / "m.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "id", "prompt", "note"])
        writer.writeheader()
        writer.writerows([{"path": "media/a.wav", "id": "A", "prompt": "hi", "note": "x"},
                          {"path": str(tmp_path / "media" / "b.wav")}])
    pq.write_table(pa.Table.from_pylist([{"path": "media/a.wav", "id": "A", "prompt": "hi"},
                                         {"path": str(tmp_path / "media" / "b.wav"), "id": None, "prompt": None}]),
                   tmp_path / "m.parquet")
    for name in ("m.jsonl", "m.csv", "m.parquet"):
        first, second = list_items([str(tmp_path / name)])
        assert (first.id, first.prompt, Path(first.path)) == ("A", "hi", tmp_path / "media" / "a.wav")
        assert second.prompt is None and len(second.id) == 16 and second.path.endswith("b.wav")


def test_bad_manifest_rows_name_file_and_line(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav"}\n{"id": "x"}\n')
    with pytest.raises(UserError, match=r"m\.jsonl:2: bad manifest row \(path: Field required"):
        list_items([str(tmp_path / "m.jsonl")])
    (tmp_path / "n.jsonl").write_text('{"path": "a.wav"}\nnot json\n')
    with pytest.raises(UserError, match=r"n\.jsonl:2: not a JSON object"):
        list_items([str(tmp_path / "n.jsonl")])
    (tmp_path / "m.csv").write_text("file,id\na.wav,1\n")
    with pytest.raises(UserError, match=r"m\.csv:1: a CSV manifest needs a header row with a 'path' column"):
        list_items([str(tmp_path / "m.csv")])
    (tmp_path / "d.jsonl").write_text('{"path": "a.wav", "id": "k"}\n{"path": "b.wav", "id": "k"}\n')
    with pytest.raises(UserError, match=r"d\.jsonl:2: id 'k' is also given to"):
        list_items([str(tmp_path / "d.jsonl")])
