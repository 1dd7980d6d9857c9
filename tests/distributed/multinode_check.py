"""Run by test_ray_multinode in a fresh process: a three-node cluster on this machine (`ray.cluster_utils`), where
only one node offers `speech_host` and another only `vocoder_host`; the tts graph asks for those resources, so its
stages must land on different nodes. Prints a JSON summary on its last line."""
from __future__ import annotations

import json
import logging
import sys

import torch
from ray.cluster_utils import Cluster

from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.runtime.executor_ray import RayExecutor
from omnigraph.runtime.overrides import parse_overrides
from omnigraph.runtime.validate import load_graph

SETTINGS = ["*.greedy=true", "*.max_frames=10", "*.placement.num_gpus=0",
            "talker.placement.resources={speech_host: 1}", "code2wav.placement.resources={vocoder_host: 1}"]


def main() -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2, resources={"speech_host": 1})
    cluster.add_node(num_cpus=2, resources={"vocoder_host": 1})
    cluster.wait_for_nodes()
    graph = load_graph("tts", overrides=parse_overrides(SETTINGS))
    inputs = {"text": "Good morning, everyone."}
    checkpoint = default_checkpoint()
    torch.set_num_threads(1)  # as in the one-CPU actors, so floats compare bit for bit
    local = LocalExecutor(graph, checkpoint=checkpoint).run(inputs)
    with RayExecutor(graph, checkpoint=checkpoint, address=cluster.address) as executor:
        import ray

        remote = executor.run(inputs)
        offers = {res: n["NodeID"] for n in ray.nodes() if n["Alive"] for res in n["Resources"]
                  if res in ("speech_host", "vocoder_host")}
        where = {stage: ray.get(actors[0].where.remote()) for stage, actors in executor.actors.items()}
    cluster.shutdown()
    audio_same = all(torch.equal(a.samples, b.samples) for a, b in zip(local.outputs["audio"], remote.outputs["audio"]))
    print(json.dumps({
        "offers": offers,
        "stage_nodes": {stage: w["node_id"] for stage, w in where.items()},
        "codes_same": local.outputs["codec_codes"] == remote.outputs["codec_codes"],
        "frames": len(local.outputs["codec_codes"].frames),
        "audio_same": audio_same and len(local.outputs["audio"]) == len(remote.outputs["audio"]) > 0,
        "stats_nodes": {n: s.ray_node for n, s in remote.stats.nodes.items() if s.ray_node},
    }))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
