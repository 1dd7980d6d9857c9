"""`omnigraph caption` end to end on a generated collection (tiny checkpoint, greedy): every input once, windows
that tile each file, bad files with their reasons, and each window's caption equal to `omnigraph run captioner`
on that window alone. The issue's 200-clip run is the benchmark (examples/bench/caption_throughput.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile

from caption_media import make_collection, speechlike
from omnigraph.cli import main

FLAGS = ("--greedy", "--max-new-tokens", "6", "--batch-size", "8")


def caption(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["caption", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The collection (folder + a manifest naming a missing file), captioned once into OUT."""
    root = tmp_path_factory.mktemp("collection")
    expected = make_collection(root / "media")
    manifest = root / "extra.jsonl"
    manifest.write_text(json.dumps({"path": "gone.wav", "id": "gone"}) + "\n")
    out = root / "captions.jsonl"
    code = main(["caption", str(root / "media"), str(manifest), "--out", str(out), *FLAGS])
    assert code == 0
    return root, expected, out, read_jsonl(out)


def test_every_input_appears_exactly_once_with_windows_tiling_the_file(job):
    root, expected, out, records = job
    assert len({r["id"] for r in records}) == len(records) == len(expected) + 1
    by_path = {Path(r["path"]): r for r in records}
    assert set(by_path) == set(expected) | {root / "gone.wav"}
    for path, want in expected.items():
        record = by_path[path]
        if want.error:
            assert record["status"] == "error" and want.error in record["error"], (path, record["error"])
            assert str(path) in record["error"] and record["windows"] == [] and record["caption"] is None
            continue
        assert record["status"] == "ok", (path, record["error"])
        windows = record["windows"]
        assert len(windows) == want.windows, path
        assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(record["audio_seconds"])
        assert all(a["end"] == b["start"] for a, b in zip(windows, windows[1:]))
        assert all(0 < w["end"] - w["start"] <= 30 for w in windows)
        assert all(1 <= w["tokens"] <= 6 for w in windows)
        assert record["caption"] == "\n".join(w["text"] for w in windows)
        assert record["settings"]["greedy"] is True and record["model"]["graph"] == "captioner"
        assert {"decode_s", "wall_s", "nodes"} <= record["timings"].keys()
    assert "does not exist" in by_path[root / "gone.wav"]["error"]


def test_a_95_s_file_gives_four_windows_of_at_most_30_s(job):
    _, _, _, records = job
    longest = max((r for r in records if r["status"] == "ok"), key=lambda r: r["audio_seconds"])
    assert longest["audio_seconds"] == pytest.approx(95.0)
    assert len(longest["windows"]) == 4


def test_errors_file_and_summary(job):
    _, expected, out, records = job
    errors = read_jsonl(out.with_suffix(".errors.jsonl"))
    assert sorted(e["id"] for e in errors) == sorted(r["id"] for r in records if r["status"] == "error")
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    failed = sum(1 for e in expected.values() if e.error) + 1
    assert summary["done"] == len(expected) + 1 - failed and summary["failed"] == failed
    assert summary["skipped"] == 0 and summary["interrupted"] is False
    assert summary["audio_hours"] == pytest.approx(sum(r["audio_seconds"] or 0 for r in records
                                                       if r["status"] == "ok") / 3600, rel=1e-4)
    assert summary["slowest_stage"] in summary["stage_seconds"]
    assert summary["files_per_s"] > 0 and summary["output_tokens_per_s"] > 0


def test_each_window_caption_is_what_omnigraph_run_gives_for_that_window_alone(job, tmp_path, capsys):
    _, _, _, records = job
    longest = max((r for r in records if r["status"] == "ok"), key=lambda r: r["audio_seconds"])
    samples, rate = soundfile.read(longest["path"], dtype="float32")
    assert rate == 16000  # the 95 s clip is written at 16 kHz: a window is exactly its samples
    short = next(r for r in records if r["status"] == "ok" and r["path"].endswith(".mp3") and len(r["windows"]) == 1)
    for i, window in enumerate(longest["windows"][1:3]):
        piece = tmp_path / f"window{i}.wav"
        soundfile.write(piece, samples[round(window["start"] * rate):round(window["end"] * rate)], rate,
                        subtype="FLOAT")
        assert run_captioner(capsys, tmp_path / f"run{i}", piece) == window["text"]
    assert run_captioner(capsys, tmp_path / "short", Path(short["path"])) == short["windows"][0]["text"]


def run_captioner(capsys, out: Path, audio: Path) -> str:
    code = main(["run", "captioner", "--input", f"audio={audio}", "--greedy", "--max-new-tokens", "6",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    return (out / "text.txt").read_text()


def test_resume_of_a_complete_output_runs_nothing_and_writes_no_duplicate(job, capsys):
    root, _, out, records = job
    before = out.read_bytes()
    code, stdout, err = caption(capsys, str(root / "media"), str(root / "extra.jsonl"), "--out", str(out),
                                "--resume", *FLAGS)
    assert code == 0, err
    assert out.read_bytes() == before
    assert json.loads(out.with_suffix(".summary.json").read_text())["skipped"] == len(records)


def test_manifest_with_ids_and_prompts_into_parquet_then_retry_failed(tmp_path, capsys):
    rate = 16000
    for name, seconds in (("a.wav", 1.0), ("b.wav", 2.0)):
        soundfile.write(tmp_path / name, speechlike(seconds, rate, len(name)), rate)
    rows = [{"path": "a.wav", "id": "first", "prompt": "Describe the sound."},
            {"path": "b.wav", "id": "second"}, {"path": "late.wav", "id": "third", "extra": 1}]
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "captions.parquet"
    code, _, err = caption(capsys, str(manifest), "--out", str(out), "--prompt", "Caption it.", *FLAGS)
    assert code == 0, err
    table = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in table) == ["first", "second", "third"]
    by_id = {r["id"]: r for r in table}
    assert by_id["first"]["settings"]["prompt"] == "Describe the sound."
    assert by_id["second"]["settings"]["prompt"] == "Caption it."
    assert by_id["third"]["status"] == "error" and "late.wav" in by_id["third"]["error"]
    assert by_id["first"]["windows"][0]["end"] == pytest.approx(1.0)
    soundfile.write(tmp_path / "late.wav", speechlike(1.5, rate, 3), rate)
    code, _, err = caption(capsys, str(manifest), "--out", str(out), "--prompt", "Caption it.", "--retry-failed",
                           *FLAGS)
    assert code == 0, err
    again = {r["id"]: r for r in pq.read_table(out).to_pylist()}
    assert len(again) == len(pq.read_table(out)) == 3
    assert again["third"]["status"] == "ok" and again["first"] == by_id["first"]
    assert out.with_suffix(".errors.jsonl").read_text() == ""
    assert not any(p.name.startswith(".captions.parquet.journal") for p in tmp_path.iterdir())


def test_dry_run_lists_files_and_estimates_without_writing(tmp_path, capsys):
    soundfile.write(tmp_path / "a.wav", speechlike(40.0, 16000, 0), 16000)
    out = tmp_path / "never.jsonl"
    code, stdout, err = caption(capsys, str(tmp_path / "a.wav"), "--out", str(out), "--dry-run", *FLAGS)
    assert code == 0, err
    assert "40.00 s  2 windows" in stdout and "1 files" in stdout and "estimate" in stdout
    assert not out.exists()


def test_limit_captions_the_first_files_to_do(tmp_path, capsys):
    for name in ("a.wav", "b.wav", "c.wav"):
        soundfile.write(tmp_path / name, speechlike(0.5, 16000, 0), 16000)
    out = tmp_path / "o.jsonl"
    args = (str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), str(tmp_path / "c.wav"), "--out", str(out), *FLAGS)
    assert caption(capsys, *args, "--limit", "2")[0] == 0
    # records are committed as their files complete, in any order
    assert sorted(Path(r["path"]).name for r in read_jsonl(out)) == ["a.wav", "b.wav"]
    assert caption(capsys, *args, "--limit", "2", "--resume")[0] == 0
    assert sorted(Path(r["path"]).name for r in read_jsonl(out)) == ["a.wav", "b.wav", "c.wav"]


def test_a_users_graph_is_the_unit_of_work_and_a_failing_window_makes_an_error_record(tmp_path, capsys):
    graph = tmp_path / "strict.yaml"
    graph.write_text("extends: captioner\nreplace:\n  decode: {kind: media_decode, config: {expect: audio, "
                     "max_seconds: 2}}\n")
    for name, seconds in (("short.wav", 1.0), ("long.wav", 5.0)):
        soundfile.write(tmp_path / name, speechlike(seconds, 16000, 0), 16000)
    out = tmp_path / "o.jsonl"
    code, _, err = caption(capsys, str(tmp_path / "short.wav"), str(tmp_path / "long.wav"), "--out", str(out),
                           "--graph", str(graph), *FLAGS)
    assert code == 0, err
    by_name = {Path(r["path"]).name: r for r in read_jsonl(out)}
    assert by_name["short.wav"]["status"] == "ok" and by_name["short.wav"]["model"]["graph"] == "strict"
    assert by_name["long.wav"]["status"] == "error"
    assert by_name["long.wav"]["error"].startswith("window 0 (0.00-5.00 s): media file")
    assert "media_decode's limit of 2 s" in by_name["long.wav"]["error"]
