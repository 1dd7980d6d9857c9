"""Stages land on the actors and resources their YAML placement asks for, as Ray itself reports them; placements
the cluster cannot hold are refused before any actor starts."""
from __future__ import annotations

import textwrap

import pytest
from toy_nodes import ALL, Number

from omnigraph.runtime.errors import GraphValidationError
from omnigraph.runtime.executor_ray import RayExecutor
from omnigraph.testing import graph_from_yaml


def ray_view(ray, executor: RayExecutor) -> dict[str, list[dict]]:
    """Each stage's replicas as their own Ray runtime context describes them."""
    return {stage: ray.get([actor.where.remote() for actor in actors]) for stage, actors in executor.actors.items()}


def test_qwen3_omni_stages_get_their_own_gpus(omni_ray, ray_session) -> None:
    where = ray_view(ray_session, omni_ray)
    assert {stage: len(replicas) for stage, replicas in where.items()} == {
        "default": 1, "thinker": 1, "speech": 2, "vocoder": 1}
    assert where["thinker"][0]["nodes"] == ["audio_encoder", "interleaver", "thinker", "vision_encoder"]
    assert all(w["nodes"] == ["code_predictor", "talker"] for w in where["speech"])  # Talker + MTP together
    assert where["vocoder"][0]["nodes"] == ["code2wav"]
    gpu_ids = [w["gpu_ids"] for stage in ("thinker", "speech", "vocoder") for w in where[stage]]
    assert all(len(ids) == 1 for ids in gpu_ids) and len({ids[0] for ids in gpu_ids}) == 4  # one GPU each, distinct
    assert where["default"][0]["gpu_ids"] == []
    assert len({w["pid"] for replicas in where.values() for w in replicas}) == 5  # five processes
    assert all(w["device"] == "cpu" for replicas in where.values() for w in replicas)  # logical GPUs only


def test_a_run_uses_the_placed_actors(omni_ray, ray_session) -> None:
    result = omni_ray.run({"text": "Hello."})
    actors = {name: s.actor for name, s in result.stats.nodes.items() if s.started is not None}
    where = ray_view(ray_session, omni_ray)
    assert actors["talker"] == actors["code_predictor"] in {w["actor_id"] for w in where["speech"]}
    assert actors["thinker"] == where["thinker"][0]["actor_id"] != actors["talker"]
    assert actors["code2wav"] == where["vocoder"][0]["actor_id"]


PLACED = textwrap.dedent("""
    inputs: {n: {to: [src.n], default: 3}}
    nodes:
      src: {kind: t_count, placement: {num_gpus: 2, num_cpus: 2}}
      x2: {kind: t_scale, placement: {num_gpus: 0.5, resources: {accel: 1}}}
      total: {kind: t_sum}
    edges: [src.items -> x2.items, x2.items -> total.items]
    outputs: {total: total.total}
    """)


def test_gpu_counts_fractions_and_custom_resources(ray_session) -> None:
    with RayExecutor(graph_from_yaml(PLACED, extra_kinds=ALL)) as executor:
        executor.load()
        where = ray_view(ray_session, executor)
        assert executor.run().outputs["total"] == Number(6)
    assert len(where["src"][0]["gpu_ids"]) == 2 and where["src"][0]["resources"]["CPU"] == 2
    assert len(where["x2"][0]["gpu_ids"]) == 1 and where["x2"][0]["resources"]["GPU"] == 0.5
    assert where["x2"][0]["resources"]["accel"] == 1
    assert where["default"][0]["nodes"] == ["total"] and "GPU" not in where["default"][0]["resources"]


@pytest.mark.parametrize("change,code,words", [
    ({("src", "placement.num_gpus"): 64}, "placement-unsatisfiable", ["stage 'src'", "GPU", "--set"]),
    ({("x2", "placement.resources"): {"tpu": 1}}, "placement-unsatisfiable", ["tpu", "--resources"]),
    ({("x2", "placement.replicas"): 30}, "placement-over-capacity", ["accel", "x2 x30"]),
])
def test_unsatisfiable_placement_is_refused_before_start(ray_session, change, code, words) -> None:
    executor = RayExecutor(graph_from_yaml(PLACED, extra_kinds=ALL, overrides=change))
    with pytest.raises(GraphValidationError) as refused:
        executor.load()
    issues = refused.value.issues
    assert any(i.code == code and all(w in str(i) for w in words) for i in issues), issues
    assert all(i.where.line > 0 for i in issues)  # each points into the YAML
    assert executor.actors == {}


def test_each_actor_reads_only_its_own_nodes_weights(omni_ray, ray_session) -> None:
    # runs inside each actor (a lambda travels by value): the checkpoint tensors its nodes loaded
    keys_read = lambda worker: sorted(worker.checkpoint.read) if worker.checkpoint is not None else []  # noqa: E731
    read = {stage: [set(ray_session.get(a.__ray_call__.remote(keys_read))) for a in actors]
            for stage, actors in omni_ray.actors.items()}
    assert read["default"] == [set()]  # decoding, prompt, mel, detokenize: no tensors
    thinker, vocoder = read["thinker"][0], read["vocoder"][0]
    assert thinker and all(k.startswith("thinker.") for k in thinker)
    assert vocoder and all(k.startswith("code2wav.") for k in vocoder)
    for speech in read["speech"]:  # the Talker re-embeds the Thinker's tokens with the Thinker's table
        assert speech and all(k.startswith("talker.") or k == "thinker.model.embed_tokens.weight" for k in speech)
    assert "thinker.model.embed_tokens.weight" in thinker  # each process reads what it uses, itself


def test_a_replica_serves_as_many_runs_as_its_nodes_batch() -> None:
    """Capacity is replicas x batch: a stage admits the largest `max_batch` of its nodes (no cluster needed)."""
    from omnigraph.runtime.validate import load_graph

    graph = load_graph("qwen3_omni", overrides={("thinker", "max_batch"): 40})
    limits = RayExecutor(graph).runs_per_replica
    assert limits["thinker"] == 40 and limits["default"] == 16
    assert set(RayExecutor(graph, runs_per_replica=3).runs_per_replica.values()) == {3}
