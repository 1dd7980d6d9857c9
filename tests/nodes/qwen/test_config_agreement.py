"""Qwen2.5-Omni config keys other stages depend on must agree, checked at load (nodes/qwen/config_agreement.py;
the Qwen3-Omni cases are in tests/runtime/test_checkpoint_check.py)."""
from __future__ import annotations

import pytest
from checkpoint_edits import with_config_overrides

from omnigraph.nodes.qwen2_5.checkpoint_writer import default_checkpoint
from omnigraph.runtime.checkpoint import CheckpointError
from omnigraph.runtime.checkpoint_check import check_checkpoint
from omnigraph.runtime.validate import load_graph

DISAGREEING = [
    ("talker_config", "embedding_size", 32, "talker", "must equal thinker_config.text_config.hidden_size (64)"),
    ("talker_config", "spatial_merge_size", 1, "talker",
     "must equal thinker_config.vision_config.spatial_merge_size (2)"),
    ("thinker_config.audio_config", "output_dim", 32, "thinker",
     "must equal thinker_config.text_config.hidden_size (64)"),
]


@pytest.mark.parametrize("section, key, value, node, problem", DISAGREEING,
                         ids=[f"{s}.{k}" for s, k, *_ in DISAGREEING])
def test_qwen2_5_config_keys_other_stages_depend_on_must_agree(tmp_path, section, key, value, node, problem):
    edited = with_config_overrides(default_checkpoint(), tmp_path / "edited", {section: {key: value}})
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(load_graph("qwen2_5_omni"), edited)
    message = str(info.value)
    assert f"node '{node}' (qwen2_5_{node}):" in message
    assert f"config.json: {section}.{key} = {value}: {problem}" in message
