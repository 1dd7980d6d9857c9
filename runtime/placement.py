"""Stages: the processes a distributed run uses, from the graph's placements; and whether a cluster fits them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import GraphIssue, GraphValidationError, Location
from .graph import Graph
from .spec import Placement

SHARED_STAGE = "default"  # nodes that ask for nothing special share one process
_DEFAULT = Placement()


@dataclass
class Stage:
    """One process kind (a Ray actor, times `replicas`): its nodes and what it reserves on a cluster node.

    Nodes naming a `group` share its stage; a node with any other placement differing from the default gets its
    own stage; the rest share the `default` stage. A stage reserves the largest amount any of its nodes asks for.
    """

    name: str
    nodes: list[str] = field(default_factory=list)
    num_cpus: float = 0.0
    num_gpus: float = 0.0
    memory: int = 0
    resources: dict[str, float] = field(default_factory=dict)
    replicas: int = 1
    device: str = "auto"
    where: Location | None = None

    def demand(self) -> dict[str, float]:
        """Ray resource names -> amount, for one replica."""
        out = {"CPU": self.num_cpus, "GPU": self.num_gpus, "memory": float(self.memory), **self.resources}
        return {k: v for k, v in out.items() if v > 0}

    def describe(self) -> str:
        return ", ".join(f"{k} {_amount(k, v)}" for k, v in self.demand().items()) or "nothing"


def plan_stages(graph: Graph) -> dict[str, Stage]:
    """Stage name -> stage, in the graph's topological order of first nodes."""
    stages: dict[str, Stage] = {}
    for name in graph.topological_order():
        p = graph.nodes[name].placement
        if p.group:
            key = p.group
        elif p != _DEFAULT:
            key = name
        else:
            key = SHARED_STAGE
        stage = stages.setdefault(key, Stage(key))
        stage.nodes.append(name)
        stage.num_cpus = max(stage.num_cpus, p.num_cpus)
        stage.num_gpus = max(stage.num_gpus, p.num_gpus)
        stage.memory = max(stage.memory, p.memory or 0)
        for res, amount in p.resources.items():
            stage.resources[res] = max(stage.resources.get(res, 0.0), amount)
        stage.replicas = max(stage.replicas, p.replicas)
        if p.device != "auto":
            stage.device = p.device
    for stage in stages.values():  # errors point at the first node that set a placement field
        explicit = [n for n in stage.nodes if graph.nodes[n].placement != _DEFAULT]
        stage.where = graph.nodes[(explicit or stage.nodes)[0]].placement_at
    return stages


def total_demand(stages: dict[str, Stage]) -> dict[str, float]:
    """Ray resource names -> amount all stages' replicas reserve together."""
    needed: dict[str, float] = {}
    for stage in stages.values():
        for k, v in stage.demand().items():
            needed[k] = needed.get(k, 0.0) + v * stage.replicas
    return needed


def check_fits(graph: Graph, stages: dict[str, Stage], cluster: list[dict[str, float]]) -> None:
    """Raise GraphValidationError for stages no cluster node can hold, or a total the cluster lacks.

    `cluster` holds each alive node's total resources (Ray's `ray.nodes()[i]["Resources"]`).
    """
    issues = []
    unsatisfiable: set[str] = set()  # resources already reported: no total check for them
    fallback = Location(graph.file)
    shown = "; ".join(f"node {i + 1}: " + (", ".join(f"{k} {_amount(k, v)}" for k, v in sorted(n.items())
                                                     if k in _SHOWN or not k.startswith(("node:", "object_store")))
                                           or "nothing")
                      for i, n in enumerate(cluster)) or "no alive nodes"
    for stage in stages.values():
        demand = stage.demand()
        if any(all(node.get(k, 0.0) >= v for k, v in demand.items()) for node in cluster):
            continue
        lacking = sorted({k for k, v in demand.items() if not any(node.get(k, 0.0) >= v for node in cluster)})
        unsatisfiable.update(lacking or demand)
        issues.append(GraphIssue(
            "placement-unsatisfiable",
            f"stage '{stage.name}' (nodes {', '.join(stage.nodes)}) needs {stage.describe()} in one process, but "
            f"no node of the Ray cluster has that much {' and '.join(lacking) or 'of everything at once'} "
            f"(cluster: {shown})",
            stage.where or fallback, node=stage.nodes[0], hint=_hint(stage, lacking)))
    totals: dict[str, float] = {}
    for node in cluster:
        for k, v in node.items():
            totals[k] = totals.get(k, 0.0) + v
    for k, v in total_demand(stages).items():
        if v > totals.get(k, 0.0) and k not in unsatisfiable:
            users = [s for s in stages.values() if s.demand().get(k)]
            biggest = max(users, key=lambda s: s.demand()[k] * s.replicas)
            issues.append(GraphIssue(
                "placement-over-capacity",
                f"the graph's stages need {_amount(k, v)} {k} at once "
                f"({', '.join(f'{s.name} x{s.replicas}' for s in users)}) but the cluster has "
                f"{_amount(k, totals.get(k, 0.0))}", biggest.where or fallback, node=biggest.nodes[0],
                hint="lower replicas or the amounts, or add cluster nodes"))
    if issues:
        raise GraphValidationError(issues)


_SHOWN = ("CPU", "GPU", "memory")


def _hint(stage: Stage, lacking: list[str]) -> str:
    node = stage.nodes[0]
    if "GPU" in lacking:
        return ("start the cluster with GPUs (logical ones work for testing: `ray start --num-gpus 4`, or "
                "--ray-num-gpus for a local one), or run on CPU: --set '*.placement.num_gpus=0'")
    if lacking and lacking[0] not in _SHOWN:
        return f"start a Ray node with --resources '{{\"{lacking[0]}\": ...}}', or drop it from {node}'s placement"
    return f"lower {node}'s placement or add a larger cluster node"


def _amount(resource: str, value: Any) -> str:
    if resource == "memory":
        return f"{value / 2**30:.1f} GiB"
    return f"{value:g}"
