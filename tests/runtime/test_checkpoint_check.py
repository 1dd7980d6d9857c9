"""The checkpoint check (`omnigraph validate --checkpoint`, and `run` before any weight loads): config fields
and tensors of every node, from config.json and safetensors headers. Checkpoints here are header-only fakes
of the tiny preset, mutated per test."""
from __future__ import annotations

import copy
import json
import re
import struct
from pathlib import Path

import pytest
from config_overrides import with_overrides

from omnigraph.cli import main
from omnigraph.runtime.checkpoint import Checkpoint, CheckpointError
from omnigraph.runtime.checkpoint_check import check_checkpoint
from omnigraph.nodes.qwen3.checkpoint_configs import preset_config
from omnigraph.nodes.qwen3.header_only import entries, write_header_only
from omnigraph.runtime.validate import ALL_NODES, load_graph

CONFIG = preset_config("tiny")
TENSORS = entries(CONFIG)


@pytest.fixture(scope="module")
def graphs():
    return {name: load_graph(name) for name in ("qwen3_omni", "captioner")}


@pytest.fixture(scope="module")
def side_files(tmp_path_factory) -> Path:
    return write_header_only(tmp_path_factory.mktemp("base"), CONFIG)


@pytest.fixture
def fake(tmp_path, side_files):
    def write(config: dict | None = None, tensors: dict | None = None, shards: int = 1) -> Path:
        return write_header_only(tmp_path / "ckpt", config or CONFIG, shards=shards, tensors=tensors or TENSORS,
                                 side_files=side_files)
    return write


def problems(graph, path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        check_checkpoint(graph, path)
    return str(info.value)


def test_a_fitting_checkpoint_checks_every_tensor_of_every_node(fake, tmp_path, graphs):
    report = check_checkpoint(graphs["qwen3_omni"], fake(shards=3))
    assert report.tensors == len(TENSORS)
    assert {"audio_encoder", "vision_encoder", "thinker", "talker", "code_predictor", "code2wav"} <= set(report.nodes)


def test_a_missing_config_field_names_the_file_and_the_key(fake, tmp_path, graphs):
    config = copy.deepcopy(CONFIG)
    del config["thinker_config"]["text_config"]["num_hidden_layers"]
    message = problems(graphs["captioner"], fake(config))
    assert "node 'thinker' (thinker):" in message
    assert "config.json: required field 'thinker_config.text_config.num_hidden_layers' is missing" in message


def test_a_checkpoint_without_talker_says_to_use_the_captioner_graph(fake, tmp_path, graphs):
    config = copy.deepcopy(CONFIG)
    del config["talker_config"], config["code2wav_config"]
    text_only = {k: v for k, v in TENSORS.items() if k.startswith("thinker.")}
    path = fake(config, text_only)
    message = problems(graphs["qwen3_omni"], path)
    assert "has no 'talker_config': this checkpoint has no Talker" in message and "use the captioner graph" in message
    assert "unknown speaker" not in message
    check_checkpoint(graphs["captioner"], path)


def test_missing_unexpected_and_misshaped_tensors_are_listed_per_node_with_both_shapes(fake, tmp_path, graphs):
    tensors = dict(TENSORS)
    del tensors["thinker.model.layers.1.mlp.gate.weight"]
    tensors["talker.model.layers.0.extra.weight"] = ("F32", (2,))
    tensors["code2wav.code_embedding.weight"] = ("F32", (7, 32))
    tensors["thinker.visual.pos_embed.weight"] = ("I64", TENSORS["thinker.visual.pos_embed.weight"][1])
    message = problems(graphs["qwen3_omni"], fake(tensors=tensors, shards=4))
    sections = dict(part.split(":\n", 1) for part in message.split("\n  node ")[1:])
    assert "missing 1 tensor(s): thinker.model.layers.1.mlp.gate.weight" in sections["'thinker' (thinker)"]
    assert "unexpected 1 tensor(s): talker.model.layers.0.extra.weight" in sections["'talker' (talker)"]
    assert re.search(r"'code2wav.code_embedding.weight' in model-0000\d-of-00004.safetensors has shape \[7, 32\], "
                     r"expected \[8192, 32\]", sections["'code2wav' (code2wav)"])
    assert "has dtype I64, expected a floating-point dtype" in sections["'vision_encoder' (vision_encoder)"]
    assert set(sections) == {"'thinker' (thinker)", "'talker' (talker)", "'code2wav' (code2wav)",
                             "'vision_encoder' (vision_encoder)"}


def test_a_truncated_or_foreign_shard_is_named(fake, tmp_path, graphs):
    path = fake(shards=2)
    shard = path / "model-00002-of-00002.safetensors"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 1)
    assert "model-00002-of-00002.safetensors' is not a readable safetensors file: it is truncated" in problems(
        graphs["qwen3_omni"], path)
    shard.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    assert "no valid safetensors header" in problems(graphs["qwen3_omni"], path)


def test_a_file_given_as_checkpoint_says_it_is_a_file(fake, tmp_path):
    path = fake()
    with pytest.raises(CheckpointError, match="is a file, not a folder.*did you mean its folder"):
        Checkpoint.open(path / "config.json")
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpoint.open(tmp_path / "nowhere")


def test_a_budget_past_the_checkpoints_positions_names_the_limit(fake, tmp_path):
    path = fake()
    for field, key in (("max_new_tokens", "thinker_config"), ("max_frames", "talker_config")):
        graph = load_graph("qwen3_omni", overrides={(ALL_NODES, field): 4097})
        message = problems(graph, path)
        assert f"{field} = 4097 is more than this checkpoint's 4096 positions ({key}.text_config." in message
    check_checkpoint(load_graph("qwen3_omni", overrides={(ALL_NODES, "max_new_tokens"): 4096}), path)


def test_validate_and_run_report_a_bad_checkpoint_before_loading(fake, tmp_path, capsys):
    config = copy.deepcopy(CONFIG)
    del config["talker_config"]["text_config"]["hidden_size"]
    path = fake(config)
    assert main(["validate", "captioner", "--checkpoint", str(path)]) == 0
    assert "fits: 5 nodes" in capsys.readouterr().out
    assert main(["validate", "qwen3_omni", "captioner", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'talker_config.text_config.hidden_size' is missing" in err and err.count("error:") == 1
    code = main(["run", "qwen3_omni", "--checkpoint", str(path), "-i", "text=hi", "--out", str(tmp_path / "out")])
    assert code == 2 and "does not fit graph 'qwen3_omni'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["validate", "captioner", "--checkpoint", str(path / "model.safetensors")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert json.loads((path / "config.json").read_text())["talker_config"]  # the check changed nothing


# (section, key, value, node, the message's problem): stages that hand each other tensors or ids must agree,
# even where the weights fit either value (they are written for the edited config here)
DISAGREEING = [
    ("talker_config", "spatial_merge_size", 1, "talker",
     "must equal thinker_config.vision_config.spatial_merge_size (2)"),
    ("talker_config", "thinker_hidden_size", 32, "talker", "must equal thinker_config.text_config.hidden_size (64)"),
    ("code2wav_config", "num_quantizers", 3, "code2wav", "must equal talker_config.num_code_groups (4)"),
    ("code2wav_config", "codebook_size", 1024, "code2wav",
     "must be at least talker_config.code_predictor_config.vocab_size (2048)"),
    ("talker_config.text_config", "vocab_size", 4096, "code2wav",
     "code2wav_config.codebook_size = 2048: must be at least talker_config.text_config.vocab_size - 1024 (3072)"),
    ("thinker_config.audio_config", "output_dim", 32, "thinker",
     "must equal thinker_config.text_config.hidden_size (64)"),
    ("thinker_config.vision_config", "out_hidden_size", 32, "thinker",
     "must equal thinker_config.text_config.hidden_size (64)"),
]


@pytest.mark.parametrize("section, key, value, node, problem", DISAGREEING,
                         ids=[f"{s}.{k}" for s, k, *_ in DISAGREEING])
def test_config_keys_other_stages_depend_on_must_agree(fake, graphs, section, key, value, node, problem):
    config = with_overrides(CONFIG, {section: {key: value}})
    message = problems(graphs["qwen3_omni"], fake(config, entries(config)))
    assert f"node '{node}' ({node}):" in message and "config.json: " in message and problem in message
    assert f"{section}.{key}" in message
    assert message.count("must ") == 1, message
