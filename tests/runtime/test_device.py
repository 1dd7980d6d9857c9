"""Where nodes compute and in what dtype: `choose_device`, `resolve_dtype`, placement.device on the local
executor, and `--device`. The CUDA branch is checked with `torch.cuda.is_available` mocked (no GPU needed)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from toy_nodes import ALL, Number

from omnigraph.cli import main
from omnigraph.runtime.device import DeviceUnavailable, DTypeSetting, checkpoint_dtype, choose_device, resolve_dtype
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.ports import Input, Output
from omnigraph.testing import graph_from_yaml


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees a GPU (nothing here allocates on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


class Probe(Node):
    """Passes numbers through; its config has a `dtype`, as model nodes' do."""

    kind = "t_device_probe"

    class Config(NodeConfig):
        dtype: DTypeSetting = "auto"

    inputs = (Input("items", Number, stream=True),)
    outputs = (Output("items", Number, stream=True),)

    def stream(self, items: Any) -> Any:
        for item in items:
            yield "items", item


KINDS = [*ALL, Probe]
GRAPH = """
inputs: {items: a.items}
nodes:
  a: {kind: t_device_probe}
  b: {kind: t_device_probe, config: {dtype: float32}, placement: {device: cpu}}
  c: {kind: t_sum}
edges: [a.items -> b.items, b.items -> c.items]
outputs: {total: c.total}
"""
BF16 = SimpleNamespace(config={"torch_dtype": "bfloat16"})  # what nodes read of a checkpoint here


# -- choose_device ----------------------------------------------------------------------------------------------
def test_auto_is_cuda_when_torch_sees_a_gpu(gpu) -> None:
    assert choose_device("auto") == "cuda" and choose_device("cuda") == "cuda" and choose_device("cpu") == "cpu"


def test_auto_is_cpu_without_a_gpu(no_gpu) -> None:
    assert choose_device("auto") == "cpu"


def test_auto_on_a_ray_stage_is_cuda_only_if_the_stage_reserved_a_gpu(gpu) -> None:
    assert choose_device("auto", reserved_gpus=0) == "cpu"
    assert choose_device("auto", reserved_gpus=0.5) == "cuda"


def test_cuda_without_a_gpu_says_torch_sees_none(no_gpu) -> None:
    with pytest.raises(DeviceUnavailable, match="thinker asks for cuda, but torch sees no GPU on .*use device cpu"):
        choose_device("cuda", what="thinker asks for cuda")
    assert issubclass(DeviceUnavailable, UserError)


# -- dtype ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config, expected", [
    ({"torch_dtype": "bfloat16"}, "bfloat16"),
    ({"dtype": "float16"}, "float16"),  # transformers >= 4.56 writes `dtype`
    ({"torch_dtype": "torch.bfloat16"}, "bfloat16"),
    ({"thinker_config": {"torch_dtype": "bfloat16"}}, "bfloat16"),  # the released Qwen3-Omni config
    ({"thinker_config": {"dtype": "bfloat16"}, "talker_config": {"dtype": "float32"}}, "bfloat16"),
    ({"torch_dtype": "float32", "thinker_config": {"torch_dtype": "bfloat16"}}, "float32"),  # top level first
    ({"thinker_config": {}}, None),
    ({"text_config": {"dtype": "float16"}}, "float16"),  # any sub-config, not only a Thinker's
    ({"vision_config": {}, "text_config": {"dtype": "bfloat16"}}, "bfloat16"),  # the first that names one
    ({}, None),
])
def test_checkpoint_dtype_from_config_json_variants(config: dict, expected: str | None) -> None:
    assert checkpoint_dtype(config) == expected


def test_checkpoint_dtype_omnigraph_cannot_compute_in_is_a_user_error() -> None:
    with pytest.raises(UserError, match="thinker_config.torch_dtype 'float8_e4m3fn'.*set the nodes' dtype"):
        checkpoint_dtype({"thinker_config": {"torch_dtype": "float8_e4m3fn"}})


def test_dtype_auto_is_the_checkpoints_on_cuda_and_float32_on_cpu() -> None:
    assert resolve_dtype("auto", "cuda", BF16) is torch.bfloat16
    assert resolve_dtype("auto", "cpu", BF16) is torch.float32
    assert resolve_dtype("auto", "cuda", SimpleNamespace(config={})) is torch.float32  # declares none
    assert resolve_dtype("auto", "cuda", None) is torch.float32
    assert resolve_dtype("bfloat16", "cpu", None) is torch.bfloat16  # explicit wins everywhere
    assert resolve_dtype("float32", "cuda", BF16) is torch.float32
    assert resolve_dtype(None, "cuda", BF16) is None  # nodes without a dtype setting


def test_model_nodes_default_to_dtype_auto() -> None:
    from omnigraph.runtime.registry import default_registry

    registry = default_registry()
    configs = {kind: registry.get(kind).Config for kind in registry.kinds()}
    with_dtype = {kind: config().dtype for kind, config in configs.items() if "dtype" in config.model_fields}
    assert set(with_dtype) >= {"thinker", "talker", "code_predictor", "code2wav", "audio_encoder", "vision_encoder",
                               "mrope_interleaver"}
    assert set(with_dtype.values()) == {"auto"}


def test_load_resolves_the_dtype_once_for_setup() -> None:
    node = Probe()
    node.load("cuda", BF16)  # the probe allocates nothing: no GPU needed
    assert (node.device, node.dtype) == ("cuda", torch.bfloat16)


# -- the local executor --------------------------------------------------------------------------------------
def test_placement_device_overrides_the_executor_default_locally(gpu) -> None:
    executor = LocalExecutor(graph_from_yaml(GRAPH, extra_kinds=KINDS), device="auto", checkpoint=BF16)
    assert executor.devices == {"a": "cuda", "b": "cpu", "c": "cuda"}
    result = executor.run({"items": [Number(1), Number(2)]})
    assert result.outputs["total"] == Number(3)
    nodes = result.stats.to_json()["nodes"]
    assert (nodes["a"]["device"], nodes["a"]["dtype"]) == ("cuda", "bfloat16")  # auto on CUDA: the checkpoint's
    assert (nodes["b"]["device"], nodes["b"]["dtype"]) == ("cpu", "float32")
    assert nodes["c"]["device"] == "cuda" and "dtype" not in nodes["c"]


def test_executor_device_cpu_keeps_every_auto_node_on_cpu(gpu) -> None:
    executor = LocalExecutor(graph_from_yaml(GRAPH, extra_kinds=KINDS), device="cpu")
    assert set(executor.devices.values()) == {"cpu"}


def test_placement_cuda_without_a_gpu_names_the_node_and_yaml_line(no_gpu) -> None:
    graph = graph_from_yaml(GRAPH.replace("device: cpu", "device: cuda"), extra_kinds=KINDS)
    expected = r":\d+:\d+: node 'b' has placement device 'cuda', but torch sees no GPU"
    with pytest.raises(DeviceUnavailable, match=expected):
        LocalExecutor(graph)


# -- the command line ----------------------------------------------------------------------------------------
def test_cli_device_cuda_without_a_gpu_exits_2_before_loading(no_gpu, capsys, tmp_path: Path) -> None:
    code = main(["run", "demo", "--device", "cuda", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "error: --device cuda was given, but torch sees no GPU" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_device_cpu_is_recorded_per_node_in_result_json(capsys, tmp_path: Path) -> None:
    assert main(["run", "demo", "--device", "cpu", "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    nodes = json.loads((tmp_path / "result.json").read_text())["timings"]["nodes"]
    assert {s["device"] for s in nodes.values()} == {"cpu"}
