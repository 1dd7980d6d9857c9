"""Decoder configs that no node can compute (found by examples/heldout_sweep.py) are user errors naming the file and
the dotted key, raised from config.json alone (before any weight loads): not a bare exception mid-run, a shape
mismatch that blames the weights, or other numbers than the reference's."""
from pathlib import Path

import pytest

from omnigraph.nodes.code_predictor.model import CodePredictorArgs
from omnigraph.nodes.common.decoder_args import DecoderArgs
from omnigraph.nodes.qwen3.checkpoint_configs import preset_config
from omnigraph.runtime.checkpoint_config import ConfigSection
from omnigraph.runtime.errors import CheckpointError

TEXT = "thinker_config.text_config"
CASES = {
    "yarn": (TEXT, {"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "mrope_section": [4, 6, 6]}},
             "rope_scaling = .*rope_type 'yarn' is not supported"),
    "gelu": (TEXT, {"hidden_act": "gelu"}, "hidden_act = 'gelu': only 'silu'"),
    "gqa": (TEXT, {"num_attention_heads": 3}, r"num_key_value_heads = 2: must divide num_attention_heads \(3\)"),
    "mrope": (TEXT, {"rope_scaling": {"rope_type": "default", "mrope_section": [4, 4, 4]}},
              r"rope_scaling = .*: mrope_section \[4, 4, 4\] must be 3 sizes summing to head_dim / 2 = 16"),
    "sparse_step": (TEXT, {"decoder_sparse_step": 0}, "decoder_sparse_step = 0: must be at least 1"),
    "top_k": (TEXT, {"num_experts_per_tok": 9}, r"num_experts_per_tok = 9: must be 1 to num_experts \(8\)"),
    "talker_top_k": ("talker_config.text_config", {"num_experts_per_tok": 0}, "num_experts_per_tok = 0"),
    "predictor_width": ("talker_config.code_predictor_config", {"hidden_size": 48},
                        r"hidden_size = 48: must equal talker_config.text_config.hidden_size "
                        r"\(32\)"),
    "predictor_groups": ("talker_config.code_predictor_config", {"num_code_groups": 3},
                         r"num_code_groups = 3: must equal talker_config.num_code_groups \(4\)"),
}


BUILD = {TEXT: DecoderArgs.from_hf_config,
         "talker_config.text_config": lambda config: DecoderArgs.from_hf_config(config["talker_config"]["text_config"]),
         "talker_config.code_predictor_config": CodePredictorArgs.from_hf_config}


@pytest.mark.parametrize("name", list(CASES))
def test_a_config_no_decoder_can_compute_names_its_field(name):
    path, values, message = CASES[name]
    config = preset_config("tiny")
    section = config
    for part in path.split("."):
        section = section[part]
    section.update(values)
    with pytest.raises(CheckpointError, match=f"^ckpt/config.json: {path}.{message}"):
        BUILD[path](ConfigSection(config, Path("ckpt/config.json")))
    BUILD[path](ConfigSection(preset_config("tiny"), Path("ckpt/config.json")))  # the preset itself is fine
