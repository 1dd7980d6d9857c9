"""`omnigraph caption --executor ray` (Ray Data: decode tasks, a pool of model actors) gives the records the local
job gives, apart from timings, and resumes through the same sink."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

from omnigraph.cli import main

FLAGS = ("--greedy", "--max-new-tokens", "6", "--batch-size", "4")


def records(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)
    return {r["id"]: {k: v for k, v in r.items() if k != "timings"} for r in rows}


def test_ray_data_job_gives_the_local_records_and_resumes(ray_session, tmp_path, capsys):
    media = tmp_path / "media"
    media.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds, rate in (("long.wav", 65.0, 16000), ("a.flac", 1.0, 22050), ("b.wav", 3.0, 44100)):
        soundfile.write(media / name, (0.2 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    (media / "empty.wav").write_bytes(b"")
    local, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["caption", str(media), "--out", str(local), *FLAGS]) == 0
    assert main(["caption", str(media), "--out", str(ray_out), "--executor", "ray", "--workers", "2", *FLAGS]) == 0
    expected = records(local)
    assert records(ray_out) == expected
    assert sum(len(r["windows"]) for r in expected.values()) == 3 + 1 + 1

    kept = [line for line in ray_out.read_text().splitlines() if "long.wav" not in line]
    ray_out.write_text("\n".join(kept) + "\n")  # as if the job had stopped before the long file was done
    assert main(["caption", str(media), "--out", str(ray_out), "--executor", "ray", "--resume", *FLAGS]) == 0
    assert records(ray_out) == expected
    assert json.loads(ray_out.with_suffix(".summary.json").read_text())["skipped"] == 3


def test_a_file_that_kills_its_worker_twice_is_an_error_record_and_the_rest_are_captioned(
        ray_session, tmp_path, capsys, monkeypatch):
    from caption_toys import CrashOnLength

    from omnigraph.runtime import registry as registry_module
    from omnigraph.runtime.registry import default_registry

    monkeypatch.setattr(registry_module, "_default", default_registry().extended(CrashOnLength))
    graph = tmp_path / "crashy.yaml"
    graph.write_text("extends: captioner\nnodes:\n  crash: {kind: test_caption_crash}\n"
                     "insert:\n  - {node: crash, after: decode.audio}\n")
    media = tmp_path / "media"
    media.mkdir()
    for name, seconds in (("a.wav", 1.0), ("poison.wav", 2.5), ("b.wav", 1.5)):
        soundfile.write(media / name, np.zeros(int(seconds * 16000), np.float32) + 0.01, 16000)
    out = tmp_path / "o.jsonl"
    assert main(["caption", str(media), "--out", str(out), "--graph", str(graph), "--executor", "ray",
                 *FLAGS]) == 0
    by_name = {Path(r["path"]).name: r for r in records(out).values()}
    assert by_name["a.wav"]["status"] == by_name["b.wav"]["status"] == "ok"
    assert by_name["poison.wav"]["status"] == "error"
    assert "killed the model worker twice" in by_name["poison.wav"]["error"]
