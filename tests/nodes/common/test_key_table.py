"""KeyTable: one table for the loader and the writer; scopes load a model kept under several prefixes, borrowed
keys are read but not written."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from omnigraph.nodes.common.key_table import EMBED, KeyTable
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import CheckpointError


def table() -> KeyTable:
    t = KeyTable("m.", scopes=("model.", "head."))
    t.add("model.embed.weight", (4, 2), EMBED, "embed")
    t.linear("head", 3, 2, ours="out")
    t.add("model.shared.weight", (5, 2), EMBED, "shared", borrowed=True)
    return t


@pytest.fixture
def checkpoint(tmp_path):
    tensors = {"m.model.embed.weight": torch.ones(4, 2), "m.head.weight": torch.full((3, 2), 2.0),
               "m.model.shared.weight": torch.zeros(5, 2),
               "m.other.weight": torch.zeros(1)}  # another model's tensor under the same prefix
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({}))
    return Checkpoint.open(tmp_path)


def test_scopes_load_only_their_tensors(checkpoint) -> None:
    state = table().load(checkpoint)
    assert sorted(state) == ["embed", "out.weight", "shared"]
    assert state["out.weight"].shape == (3, 2)


def test_borrowed_keys_are_not_written() -> None:
    assert [key for key, _, _ in table().entries()] == ["m.model.embed.weight", "m.head.weight"]


def test_a_wrong_shape_names_the_key_and_both_shapes(checkpoint) -> None:
    t = KeyTable("m.", scopes=("head.",))
    t.linear("head", 3, 4)
    with pytest.raises(CheckpointError, match=r"'m\.head\.weight' in model\.safetensors has shape \[3, 2\], "
                                              r"expected \[3, 4\]"):
        t.load(checkpoint)
