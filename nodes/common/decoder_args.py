"""The shape of a decoder (Thinker, Talker, code predictor), read from a Hugging Face text config."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...runtime.checkpoint_config import config_problem


@dataclass(frozen=True)
class DecoderArgs:
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    mrope_section: tuple[int, int, int]
    n_experts: int
    top_k: int
    moe_hidden: int
    norm_topk_prob: bool
    dense_hidden: int  # width of dense (non-MoE) layers' MLP
    sparse: tuple[bool, ...]  # per layer: MoE (True) or dense MLP
    attention_bias: bool = False
    shared_hidden: int = 0  # width of a sigmoid-gated shared expert beside the routed ones (0: none)
    max_positions: int | None = None  # max_position_embeddings: the longest sequence the checkpoint supports

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> DecoderArgs:
        """From config.json (full, thinker_config, or its text_config)."""
        c = config.get("thinker_config", config)
        c = c.get("text_config", c)
        rope = c.get("rope_parameters") or {}
        scaling = c.get("rope_scaling") or {}
        theta = rope.get("rope_theta", c.get("rope_theta", 10000.0))
        section = rope.get("mrope_section", scaling.get("mrope_section", [24, 20, 20]))
        n_layers, n_experts = c["num_hidden_layers"], c.get("num_experts", c.get("num_local_experts", 0))
        step, dense_only = c.get("decoder_sparse_step", 1), set(c.get("mlp_only_layers") or [])
        check_supported(c, rope or scaling, section if "mrope_section" in rope or "mrope_section" in scaling else None)
        sparse = tuple(i not in dense_only and n_experts > 0 and (i + 1) % step == 0 for i in range(n_layers))
        return cls(vocab_size=c["vocab_size"], dim=c["hidden_size"], n_layers=n_layers,
                   n_heads=c["num_attention_heads"], n_kv_heads=c.get("num_key_value_heads", c["num_attention_heads"]),
                   head_dim=c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"],
                   rms_eps=c.get("rms_norm_eps", 1e-6), rope_theta=float(theta), mrope_section=tuple(section),
                   n_experts=n_experts, top_k=c.get("num_experts_per_tok", 0),
                   moe_hidden=c.get("moe_intermediate_size", 0), norm_topk_prob=c.get("norm_topk_prob", True),
                   dense_hidden=c.get("intermediate_size", 0), sparse=sparse,
                   attention_bias=c.get("attention_bias", False),
                   max_positions=c.get("max_position_embeddings"))


def check_supported(c: dict[str, Any], rope: dict[str, Any], section: list[int] | None) -> None:
    """Config values this decoder cannot compute are user errors naming the field, before any weight loads."""
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    where = "rope_parameters" if "rope_parameters" in c else "rope_scaling"
    if rope_type not in (None, "default", "mrope"):  # "mrope": the Qwen2-VL spelling of default + sections
        raise config_problem(c, where, f"rope_type '{rope_type}' is not supported (only 'default' rotary "
                                       f"embeddings, no scaling)")
    if c.get("hidden_act", "silu") != "silu":
        raise config_problem(c, "hidden_act", "only 'silu' (SwiGLU MLPs) is supported")
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    if kv < 1 or heads % kv:
        raise config_problem(c, "num_key_value_heads", f"must divide num_attention_heads ({heads})")
    head_dim = c.get("head_dim") or c["hidden_size"] // heads
    if section is not None and (len(section) != 3 or sum(section) != head_dim // 2):
        raise config_problem(c, where, f"mrope_section {list(section)} must be 3 sizes summing to head_dim / 2 "
                                       f"= {head_dim // 2}")
    if c.get("decoder_sparse_step", 1) < 1:
        raise config_problem(c, "decoder_sparse_step", "must be at least 1 (1: every layer is MoE)")
    experts = c.get("num_experts", c.get("num_local_experts", 0))
    if experts and not 1 <= c.get("num_experts_per_tok", 0) <= experts:
        raise config_problem(c, "num_experts_per_tok", f"must be 1 to num_experts ({experts})")
