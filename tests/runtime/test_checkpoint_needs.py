"""What nodes need of a checkpoint: the runtime gives one to every node that needs one (or stops, saying where),
and the default comes from the node kinds (`Node.default_checkpoint`), not from the runtime."""
from __future__ import annotations

from pathlib import Path

import pytest

from omnigraph.runtime.checkpoint_needs import default_checkpoint_builder
from omnigraph.runtime.errors import MissingCheckpoint, UserError
from omnigraph.runtime.node import Node
from omnigraph.runtime.payloads import Text
from omnigraph.runtime.ports import Input, Output
from omnigraph.runtime.registry import build_registry
from omnigraph.runtime.validate import load_graph_text


def family_a() -> Path:
    return Path("a")


def family_b() -> Path:
    return Path("b")


def _kind(name: str, needs: bool, default=None) -> type[Node]:
    attrs = dict(kind=name, needs_checkpoint=needs, inputs=(Input("text", Text),), outputs=(Output("text", Text),),
                 default_checkpoint=None if default is None else staticmethod(default))
    return type(name, (Node,), attrs)


REGISTRY = build_registry().extended(_kind("t_model_a", True, family_a), _kind("t_model_b", True, family_b),
                                     _kind("t_tokenizer", True), _kind("t_free", False))


def _graph(*kinds: str):
    nodes = "".join(f"  n{i}: {{kind: {k}}}\n" for i, k in enumerate(kinds))
    edges = "".join(f"  - n{i}.text -> n{i + 1}.text\n" for i in range(len(kinds) - 1))
    text = (f"name: g\ninputs:\n  text: {{to: [n0.text]}}\nnodes:\n{nodes}"
            + (f"edges:\n{edges}" if edges else "") + f"outputs:\n  text: n{len(kinds) - 1}.text\n")
    return load_graph_text(text, file="g.yaml", registry=REGISTRY)


def test_no_node_needs_a_checkpoint_no_default() -> None:
    assert default_checkpoint_builder(_graph("t_free")) is None


def test_the_family_default_is_used_and_tokenizer_kinds_take_it() -> None:
    assert default_checkpoint_builder(_graph("t_tokenizer", "t_model_a", "t_free"))() == Path("a")


def test_kinds_without_a_default_alone_ask_for_a_checkpoint() -> None:
    with pytest.raises(UserError, match=r"g\.yaml: node 'n0' \(t_tokenizer\) needs a checkpoint.*--checkpoint"):
        default_checkpoint_builder(_graph("t_tokenizer"))


def test_two_families_ask_the_user_to_choose() -> None:
    with pytest.raises(UserError, match=r"t_model_a, t_model_b default to different checkpoints.*--checkpoint"):
        default_checkpoint_builder(_graph("t_model_a", "t_model_b"))


NEEDING = sorted(kind for kind in build_registry().kinds() if build_registry().get(kind).needs_checkpoint)


@pytest.mark.parametrize("kind", NEEDING)
def test_the_runtime_gives_a_checkpoint_to_every_node_that_needs_one(kind: str) -> None:
    """No kind checks for itself: loading without a checkpoint stops before its setup runs."""
    cls = build_registry().get(kind)
    node = cls(name="n")
    node.setup = lambda device, checkpoint: pytest.fail("setup ran without a checkpoint")
    with pytest.raises(MissingCheckpoint, match=rf"^node 'n' \({kind}\) needs a checkpoint: pass --checkpoint DIR"):
        node.load("cpu", None)


def test_the_shipped_model_kinds_need_a_checkpoint() -> None:
    assert {"audio_encoder", "vision_encoder", "mrope_interleaver", "thinker", "talker", "code_predictor",
            "code2wav", "prompt", "detokenize"} <= set(NEEDING)


def test_an_executor_without_a_checkpoint_names_the_node_in_the_graph_file() -> None:
    from omnigraph.runtime.executor_local import LocalExecutor
    from omnigraph.runtime.validate import load_graph

    graph = load_graph("qwen3_omni")
    first = next(name for name in graph.topological_order() if graph.nodes[name].cls.needs_checkpoint)
    with pytest.raises(MissingCheckpoint, match=rf"qwen3_omni\.yaml:\d+:\d+: node '{first}' \(\w+\) needs a "
                                                r"checkpoint"):
        LocalExecutor(graph)


def test_the_ray_executor_asks_for_the_checkpoint_when_it_loads_not_when_it_plans() -> None:
    from omnigraph.runtime.executor_ray import RayExecutor
    from omnigraph.runtime.validate import load_graph

    executor = RayExecutor(load_graph("qwen3_omni"))  # planning stages (omnigraph validate --ray-address) needs none
    assert "speech" in executor.stages
    with pytest.raises(MissingCheckpoint, match=r"qwen3_omni\.yaml:\d+:\d+: node '\w+' \(\w+\) needs a checkpoint"):
        executor.load()  # before any Ray call: no cluster is started for it
    assert not executor.actors
