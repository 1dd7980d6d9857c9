"""How values travel between Ray processes: tensors as raw bytes, whole values in the pulled message when read once
and as one object ref when read by several stages, graph inputs likewise."""
from __future__ import annotations

import pickle
import textwrap

import pytest
import torch
from toy_nodes import ALL, Number

from omnigraph.runtime.ray_tensors import _dump, _load
from omnigraph.testing import graph_from_yaml

TENSORS = {
    "float32": torch.randn(3, 5),
    "strided view": torch.randn(4, 6)[:, 1:4],
    "transposed int64": torch.arange(6).reshape(2, 3).t(),
    "0-d": torch.tensor(7.5),
    "empty": torch.zeros(0, 3),
    "bfloat16": torch.randn(5).to(torch.bfloat16),
    "bool": torch.tensor([True, False, True]),
    "conjugated complex": torch.randn(3, dtype=torch.complex64).conj(),
    "needs grad": torch.randn(2, requires_grad=True),
    "sparse": torch.eye(3).to_sparse(),
}


@pytest.mark.parametrize("name", TENSORS)
def test_a_tensor_arrives_with_the_same_bytes_dtype_and_shape(name) -> None:
    sent = TENSORS[name]
    got = _load(pickle.loads(pickle.dumps(_dump(sent), protocol=5)))
    assert (got.dtype, got.shape, got.layout, got.requires_grad) == (sent.dtype, sent.shape, sent.layout,
                                                                     sent.requires_grad)
    if sent.layout == torch.strided and not sent.requires_grad:
        assert torch.equal(got, sent.resolve_conj())
        got.zero_()  # its own writable memory, not Ray's read-only buffer
    else:
        assert torch.equal(got.detach().to_dense(), sent.detach().to_dense())


SHARED = textwrap.dedent("""
    inputs: {n: {to: [src.n, a.b, b.b], default: 4}}
    nodes:
      src: {kind: t_count}
      total: {kind: t_sum}
      a: {kind: t_add}
      b: {kind: t_add}
    edges: [src.items -> total.items, total.total -> a.a, total.total -> b.a]
    outputs: {total: total.total, a: a.total, b: b.total}
    """)


def test_values_read_by_several_stages_arrive_at_each(ray_session) -> None:
    """total.total is read by two stages and the caller, the input n by three stages: each gets its value."""
    from omnigraph.runtime.executor_ray import RayExecutor

    plain = graph_from_yaml(SHARED, extra_kinds=ALL)
    graph = graph_from_yaml(SHARED, extra_kinds=ALL, overrides={(n, "placement.group"): n for n in plain.nodes})
    with RayExecutor(graph) as executor:
        assert len(executor.stages) == 4
        result = executor.run({"n": Number(4)})
    assert result.outputs == {"total": Number(6), "a": Number(10), "b": Number(10)}
