"""The shape of a decoder (Thinker, Talker, code predictor), read from a Hugging Face text config."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
