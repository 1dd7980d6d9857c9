"""Keys of a Qwen-Omni config.json (Qwen3-Omni, Qwen2.5-Omni) that must agree across its sections, because one
stage hands its tensors or ids to another. Each is checked at load by the node that receives them (so
`omnigraph validate --checkpoint` and `run` report it before any weight loads) as a config_problem naming
config.json and both dotted keys; a checkpoint whose weights happen to fit either value is still refused, since
its run would fail or be wrong.
"""
from __future__ import annotations

from typing import Any

from ...runtime.checkpoint_config import config_problem

CONTROL_IDS = 1024  # Qwen3-Omni's Talker: its last codec ids are control ids, never codebook-0 codes (talker/node.py)


def check_thinker_inputs(config: Any) -> None:
    """The encoders' output widths are the Thinker's hidden size (their embeddings replace its placeholders)."""
    thinker = config.get("thinker_config") or {}
    text = thinker.get("text_config") or {}
    for name, key in (("audio_config", "output_dim"), ("vision_config", "out_hidden_size")):
        section = thinker.get(name)
        if section is not None and key in section and "hidden_size" in text:
            _same(section, key, text, "hidden_size", "the encoder's embeddings take the places of the "
                                                     "Thinker's placeholder tokens")


def check_talker_inputs(config: Any, width_key: str) -> None:
    """The Talker reads the Thinker's states at the Thinker's width (talker_config.`width_key`: Qwen3-Omni's
    thinker_hidden_size, Qwen2.5-Omni's embedding_size) and places vision tokens as the encoder merged them."""
    talker, thinker = config["talker_config"], config.get("thinker_config") or {}
    text, vision = thinker.get("text_config") or {}, thinker.get("vision_config")
    if width_key in talker and "hidden_size" in text:  # absent: the Talker's loader names the missing field
        _same(talker, width_key, text, "hidden_size",
              "the Talker projects the Thinker's embeddings and hidden states")
    if vision is not None:
        _same(talker, "spatial_merge_size", vision, "spatial_merge_size",
              "the Talker's positions of an image or video follow the vision encoder's merged patches", default=2)


def check_code2wav_inputs(config: Any, num_quantizers: int, codebook_size: int) -> None:
    """Qwen3-Omni's Code2Wav decodes the Talker's frames: one code per code group, each code within its codebook."""
    talker = config.get("talker_config")
    if talker is None:
        return
    code2wav = config["code2wav_config"]
    predictor, text = talker.get("code_predictor_config") or {}, talker.get("text_config") or {}
    groups = talker.get("num_code_groups", predictor.get("num_code_groups"))
    if groups is not None and groups != num_quantizers:
        raise config_problem(code2wav, "num_quantizers", f"must equal {_key(talker, 'num_code_groups')} "
                                                         f"({groups}): Code2Wav decodes one code per code group")
    codes = [(f"{_key(predictor, 'vocab_size')} ({predictor['vocab_size']}): the code predictor's codes",
              predictor["vocab_size"])] if "vocab_size" in predictor else []
    if "vocab_size" in text:
        codes.append((f"{_key(text, 'vocab_size')} - {CONTROL_IDS} ({text['vocab_size'] - CONTROL_IDS}): the "
                      "Talker's codebook-0 codes (its last ids are control ids)", text["vocab_size"] - CONTROL_IDS))
    for what, count in codes:
        if count > codebook_size:
            raise config_problem(code2wav, "codebook_size", f"must be at least {what} would fall outside it")


def _same(section: Any, key: str, other: Any, other_key: str, why: str, default: Any = None) -> None:
    value, want = section.get(key, default), other[other_key]
    if value != want:
        raise config_problem(section, key, f"must equal {_key(other, other_key)} ({want}): {why}")


def _key(section: Any, key: str) -> str:
    return f"{getattr(section, 'path', '')}{key}"
