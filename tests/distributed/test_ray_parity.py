"""The shipped graphs give identical outputs on the local and the Ray executor (tiny checkpoint, greedy, fp32)."""
from __future__ import annotations

import pytest
import torch

from ray_graphs import MEDIA, graph, torch_threads
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.executor_ray import RayExecutor

PROMPTS = {
    "speech": {"audio": str(MEDIA / "speech.wav"), "text": "What is said?"},
    "picture": {"image": str(MEDIA / "picture.png"), "text": "Describe the picture."},
    "text": {"text": "Say something about the sea."},
}


def assert_same_outputs(local, ray_result) -> None:
    assert ray_result.outputs.keys() == local.outputs.keys()
    assert ray_result.missing == local.missing
    for name, value in local.outputs.items():
        other = ray_result.outputs[name]
        if name == "audio":  # every chunk, sample for sample
            assert len(other) == len(value) and len(value) > 0
            for a, b in zip(value, other):
                assert a.sample_rate == b.sample_rate and torch.equal(a.samples, b.samples)
        elif name == "text":
            assert [t.text for t in other] == [t.text for t in value]
        else:
            assert other == value, name


@pytest.mark.parametrize("prompt", sorted(PROMPTS))
def test_qwen3_omni_same_on_ray(omni_ray, omni_local, prompt) -> None:
    with torch_threads(1):
        local = omni_local.run(PROMPTS[prompt])
    remote = omni_ray.run(PROMPTS[prompt])
    assert len(local.outputs["codec_codes"].frames) > 0
    assert_same_outputs(local, remote)
    assert remote.stats.executor == "ray"


@pytest.mark.parametrize("name,inputs", [
    ("safe_omni", PROMPTS["speech"]),
    ("captioner", {"audio": str(MEDIA / "speech.wav")}),
])
def test_shipped_graph_same_on_ray(ray_session, checkpoint, name, inputs) -> None:
    g = graph(name)
    with torch_threads(1):
        local = LocalExecutor(g, checkpoint=checkpoint).run(inputs)
    with RayExecutor(g, checkpoint=checkpoint) as executor:
        remote = executor.run(inputs)
        again = executor.run(inputs)
    assert_same_outputs(local, remote)
    assert_same_outputs(local, again)
