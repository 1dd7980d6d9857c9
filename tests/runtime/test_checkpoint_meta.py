"""Meta builds and checkpoint checks without torch's Python meta kernels (runtime/checkpoint_meta.py): they
would import torch._dynamo, seconds of CPU at the start of every `omnigraph run`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from omnigraph.runtime.checkpoint_meta import MetaShapes, empty_model

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "tests" / "fixtures" / "media"

# Qwen3-Omni runs every node of its family (both encoders, Thinker, Talker, code predictor, Code2Wav); Qwen2.5-Omni
# is checked and loaded (its token2wav takes half a minute to run on the CPU), every kind of it built on the CPU.
NO_DYNAMO = f"""
import sys
from omnigraph.cli import main
from omnigraph.runtime.checkpoint_needs import default_checkpoint_builder
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.validate import load_graph

code = main(["run", "qwen3_omni", "--greedy", "--max-new-tokens", "2", "--max-frames", "2", "-i", "text=hi",
             "-i", "image={MEDIA / 'picture.png'}", "-i", "audio={MEDIA / 'speech.wav'}", "--out", sys.argv[1]])
graph = load_graph("qwen2_5_omni")
assert main(["validate", "qwen2_5_omni", "--checkpoint", str(default_checkpoint_builder(graph)())]) == 0
with LocalExecutor(graph, device="cpu", checkpoint=default_checkpoint_builder(graph)()) as executor:
    executor.load()
print(code, "torch._dynamo" in sys.modules)
"""


def test_running_and_checking_the_model_graphs_never_imports_torch_dynamo(tmp_path):
    done = subprocess.run([sys.executable, "-c", NO_DYNAMO, str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["0", "False"], done.stdout + done.stderr


class Toy(nn.Module):
    def __init__(self, args: int):
        super().__init__()
        self.embed = nn.Embedding(args, 4)  # normal_ init
        self.proj = nn.Linear(4, 3)  # kaiming_uniform_ init
        self.register_buffer("table", 1.0 / (10.0 ** (torch.arange(3) / 3)), persistent=False)


def test_an_empty_model_has_meta_parameters_and_cpu_buffers_with_their_values():
    model = empty_model(Toy, 5)
    assert all(p.is_meta for p in model.parameters())
    assert model.embed.weight.shape == (5, 4) and model.proj.weight.requires_grad
    torch.testing.assert_close(model.table, 1.0 / (10.0 ** (torch.arange(3) / 3)))


def test_parameters_built_by_another_thread_meanwhile_are_not_moved():
    import threading

    built = {}

    class Waits(nn.Module):
        def __init__(self, args):
            super().__init__()
            other = threading.Thread(target=lambda: built.setdefault("linear", nn.Linear(2, 2)))
            other.start()
            other.join(timeout=60)
            self.weight = nn.Parameter(torch.empty(2))

    assert empty_model(Waits, None).weight.is_meta
    assert not built["linear"].weight.is_meta


@pytest.mark.parametrize("join, parts, dim", [
    (torch.cat, [(2, 3), (4, 3)], 0), (torch.cat, [(2, 3), (2, 1)], -1), (torch.stack, [(2, 3)] * 3, 1),
    (torch.stack, [(2,), (2,)], -1), (torch.cat, [(5, 2, 3)], 2)])
def test_cat_and_stack_of_meta_tensors_have_torchs_shape_and_dtype(join, parts, dim):
    dtypes = [torch.bfloat16, torch.float32, torch.float16][:len(parts)] + [torch.float32] * 3
    tensors = [torch.empty(s, dtype=d) for s, d in zip(parts, dtypes)]
    want = join(tensors, dim)
    with MetaShapes():
        got = join([t.to("meta") for t in tensors], dim=dim)
    assert got.is_meta and (got.shape, got.dtype) == (want.shape, want.dtype)


def test_meta_tensors_that_do_not_fit_get_torchs_own_error():
    with MetaShapes(), pytest.raises(RuntimeError):
        torch.cat([torch.empty(2, 3, device="meta"), torch.empty(2, 4, device="meta")])
