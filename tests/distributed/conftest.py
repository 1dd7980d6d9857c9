"""One local Ray instance for the whole session (12 logical GPUs, no real ones, and
2 of a custom resource `accel`), and the executors shared by tests.

Ray's start-up and each stage's weight loading cost seconds, so tests share these session-scoped objects.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
from ray_graphs import TESTS, graph


@pytest.fixture(scope="session")
def ray_session():
    ray = pytest.importorskip("ray")
    # Actor processes import test node kinds (toy_nodes) by module name, as the driver does.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=24, num_gpus=12, resources={"accel": 2}, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    return default_checkpoint()


@pytest.fixture(scope="session")
def omni_ray(ray_session, checkpoint):
    """qwen3_omni on Ray, two replicas of the speech stage (so concurrent runs spread over them)."""
    from omnigraph.runtime.executor_ray import RayExecutor

    executor = RayExecutor(graph("qwen3_omni", "talker.placement.replicas=2"), checkpoint=checkpoint)
    executor.load()
    yield executor
    executor.shutdown()


@pytest.fixture(scope="session")
def omni_local(checkpoint):
    from omnigraph.runtime.executor_local import LocalExecutor

    executor = LocalExecutor(graph("qwen3_omni"), checkpoint=checkpoint)
    executor.load()
    return executor
