"""runtime/loops.py: a loop whose two nodes are loaded together, with a direct edge back, is offered to the node
it feeds (`fuse_loop`), once per load; a node between them keeps them apart."""
from __future__ import annotations

import pytest
from toy_nodes import ALL, Ask, Number

from omnigraph.runtime.executor_local import LocalExecutor
from omnigraph.testing import graph_from_yaml


class FusingAsk(Ask):
    kind = "t_fusing_ask"
    offers: list[str] = []  # the partners offered, in order (reset per test)

    def fuse_loop(self, partner) -> None:
        self.offers.append(partner.name)


DIRECT = """
nodes: {a: {kind: t_fusing_ask}, s: {kind: t_scale}}
edges: [a.questions -> s.items]
loops: [s.items -> a.answers]
inputs: {start: a.start}
outputs: {last: a.last}
"""
BETWEEN = """
nodes: {a: {kind: t_fusing_ask}, s: {kind: t_scale}, m: {kind: t_scale}}
edges: [a.questions -> m.items, m.items -> s.items]
loops: [s.items -> a.answers]
inputs: {start: a.start}
outputs: {last: a.last}
"""


@pytest.mark.parametrize("graph, offers, last", [(DIRECT, ["s", "s"], 15), (BETWEEN, [], 85)])
def test_a_direct_loop_is_offered_to_the_node_it_feeds_on_every_load(graph, offers, last):
    FusingAsk.offers = []
    executor = LocalExecutor(graph_from_yaml(graph, extra_kinds=[*ALL, FusingAsk]))
    executor.load()
    result = executor.run({"start": Number(1)})
    assert result.outputs["last"].value == last  # three rounds of (x2 per scale, then +1) from 1
    assert FusingAsk.offers == offers
