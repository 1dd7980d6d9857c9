"""`omnigraph run --executor ray` writes what the local executor writes (in the session's Ray instance)."""
from __future__ import annotations

import json

import pytest

from ray_graphs import MEDIA, SETTINGS, torch_threads

from omnigraph.cli import main
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.executor_ray import RayExecutor
from omnigraph.runtime.validate import load_graph

SAME = ["text", "prompt_token_ids", "thinker_token_ids", "codec_codes"]


def run(tmp_path, name: str, *extra: str) -> dict:
    out = tmp_path / name
    args = ["run", "qwen3_omni", "--input", f"audio={MEDIA / 'speech.wav'}", "--input", "text=What is said?",
            "--out", str(out), "--trace", str(out / "trace.json"), *extra]
    for setting in SETTINGS:
        args += ["--set", setting]
    assert main(args) == 0
    return json.loads((out / "result.json").read_text())


def test_cli_ray_run_writes_the_same_outputs(ray_session, checkpoint, tmp_path) -> None:
    with torch_threads(1):
        local = run(tmp_path, "local", "--checkpoint", str(checkpoint))
    remote = run(tmp_path, "ray", "--checkpoint", str(checkpoint), "--executor", "ray")
    assert all(remote[k] == local[k] for k in SAME) and local["codec_codes"]
    assert remote["timings"]["executor"] == "ray"
    talker = remote["timings"]["nodes"]["talker"]
    assert talker["actor"] and talker["ray_node"] and talker["worker"].startswith("speech#0")
    trace = json.loads((tmp_path / "ray" / "trace.json").read_text())["traceEvents"]
    assert len([e for e in trace if e["name"] == "process_name"]) == 4  # one per actor


def test_cli_refuses_a_placement_the_cluster_cannot_hold(ray_session, checkpoint, tmp_path, capsys) -> None:
    code = main(["run", "qwen3_omni", "--executor", "ray", "--checkpoint", str(checkpoint), "--input", "text=hi",
                 "--set", "thinker.placement.num_gpus=100", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "placement-unsatisfiable" in err and "qwen3_omni.yaml:" in err and "stage 'thinker'" in err
    assert not (tmp_path / "result.json").exists()


def test_ray_flags_need_the_ray_executor(capsys) -> None:
    assert main(["run", "captioner", "--input", "audio=x.wav", "--ray-num-gpus", "2"]) == 2
    assert "--executor ray" in capsys.readouterr().err


def test_cli_starts_its_own_ray_instance(tmp_path) -> None:
    """As users run it: a fresh process, no RAY_ADDRESS, logical GPUs for the stages that ask for one."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-m", "omnigraph", "run", "captioner", "--executor", "ray", "--ray-num-gpus", "1",
         "--input", f"audio={MEDIA / 'speech.wav'}", "--greedy", "--max-new-tokens", "4", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["timings"]["executor"] == "ray" and len(result["thinker_token_ids"]) == 4
    assert {n["worker"].split("#")[0] for n in result["timings"]["nodes"].values() if n["worker"]} == {
        "default", "thinker"}


def test_cli_reports_a_bad_checkpoint_before_any_actor_starts(ray_session, tmp_path, capsys) -> None:
    code = main(["run", "captioner", "--executor", "ray", "--checkpoint", str(tmp_path),
                 "--input", f"audio={MEDIA / 'speech.wav'}", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "config.json" in err and "could not load" not in err  # the driver's check saw it
    assert not (tmp_path / "out").exists()


def test_a_stage_that_cannot_load_is_a_clear_error(ray_session, tmp_path) -> None:
    """Without the driver's check (the Python API), the actor's own load failure names its stage and cause."""
    with pytest.raises(UserError, match="stage '.*' could not load: .*config.json"):
        with RayExecutor(load_graph("captioner"), checkpoint=tmp_path) as executor:
            executor.load()


def test_ctrl_c_at_random_moments_of_a_ray_run(tmp_path) -> None:
    """SIGINT while Ray starts, the actors load, or the Talker streams (its 3000 frames take half a minute): exit
    130 with "interrupted", no traceback, no result.json. (The local test covers the moments of writing.)"""
    import os
    import random
    import sys

    from interrupting import assert_interrupted_or_finished, interrupt_at

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "omnigraph", "run", "tts", "--executor", "ray", "--ray-num-gpus", "2",
               "--input", "text=" + "A long sentence to speak. " * 20, "--max-frames", "3000",
               "--trace", str(tmp_path / "trace.json")]
    rng = random.Random(7)
    delays = [rng.uniform(0.5, 16) for _ in range(3)]
    outcomes = [interrupt_at(command, tmp_path / f"o{i}", delay, tmp_path, env) for i, delay in enumerate(delays)]
    assert assert_interrupted_or_finished(outcomes, delays) == len(delays)
    assert not (tmp_path / "trace.json").exists()


def test_unreachable_ray_address_fails_fast(tmp_path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "omnigraph", "run", "demo", "--executor", "ray", "--ray-address",
                           "127.0.0.1:1", "--input", "text=sos", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and "no Ray cluster answers at '127.0.0.1:1'" in done.stderr


def test_validate_checks_placements_against_the_cluster(ray_session, tmp_path, capsys) -> None:
    assert main(["validate", "qwen3_omni", "--ray-address", "auto"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "\n  stage speech x1: talker, code_predictor (CPU 1, GPU 1)\n" in out
    greedy = tmp_path / "greedy.yaml"
    greedy.write_text("extends: qwen3_omni\nreplace:\n  code2wav: {kind: code2wav, placement: {num_gpus: 64}}\n")
    assert main(["validate", str(greedy), "--ray-address", "auto"]) == 2
    err = capsys.readouterr().err
    assert "placement-unsatisfiable" in err and "greedy.yaml:3:" in err and "stage 'code2wav'" in err


@pytest.mark.parametrize("bad", ["-3", "inf", "nan", "two"])
def test_a_negative_or_infinite_gpu_count_is_a_usage_error(bad, capsys) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse: exit 2 naming the flag, before anything starts
        main(["run", "demo", "--executor", "ray", "--ray-num-gpus", bad])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "--ray-num-gpus" in err and "not a number of GPUs" in err
