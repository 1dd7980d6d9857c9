"""examples/gpu_check.py without a GPU: its arguments, its plan, and a clear refusal (exit 2, no traceback)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_without_cuda_it_exits_2_with_a_message(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, str(SCRIPT), "--skip-tests"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "gpu_check: torch sees no GPU here" in done.stderr and "Traceback" not in done.stderr


def test_plan_runs_the_parity_tests_and_qwen3_omni_on_cuda_on_both_checkpoints(gpu_check, tmp_path: Path) -> None:
    steps = gpu_check.plan(gpu_check.parse_args([]), tmp_path)
    names = [s.name for s in steps]
    assert names[:3] == ["parity tests", "write the small checkpoint", "qwen3_omni on cuda (tiny, float32)"]
    assert names[3] == "qwen3_omni on cuda (small, bfloat16)"
    assert ("concurrency benchmark" in names) == gpu_check.BENCH.is_file()
    tests = steps[0].command
    assert "tests/nodes/thinker/test_thinker_parity.py" in tests and "tests/test_graphs_qwen3_omni.py" in tests
    run = steps[2].command
    assert run[run.index("--device") + 1] == "cuda" and "qwen3_omni" in run


def test_options_narrow_the_plan(gpu_check, tmp_path: Path) -> None:
    args = gpu_check.parse_args(["--checkpoint", "/ckpt", "--skip-tests", "--skip-bench", "--timeout", "60"])
    steps = gpu_check.plan(args, tmp_path)
    assert [s.name for s in steps] == ["qwen3_omni on cuda (/ckpt)"] and args.timeout == 60
    assert steps[0].command[-2:] == ["--checkpoint", "/ckpt"]


def test_a_model_node_left_on_cpu_fails_the_check(gpu_check, tmp_path: Path) -> None:
    nodes = {"prompt": {"device": "cuda"}, "thinker": {"device": "cuda", "dtype": "bfloat16"},
             "talker": {"device": "cpu", "dtype": "float32"}}
    (tmp_path / "result.json").write_text(json.dumps({"timings": {"wall_s": 1.0, "nodes": nodes}}))
    assert gpu_check.check_on_cuda(tmp_path) == "not on cuda: talker on cpu"
    nodes["talker"]["device"] = "cuda"
    (tmp_path / "result.json").write_text(json.dumps({"timings": {"wall_s": 1.0, "nodes": nodes}}))
    assert gpu_check.check_on_cuda(tmp_path) == ""
    assert "no readable result.json" in gpu_check.check_on_cuda(tmp_path / "missing")
