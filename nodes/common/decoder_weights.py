"""Checkpoint keys of one decoder layer (Hugging Face Qwen naming) and their fusion into ours.

Keys are added to a model's KeyTable under `key` (e.g. "model.layers.3.") with our pre-fusion names under
`ours` (e.g. "layers.3."): the checkpoint's names below the layer. `fuse_layer` then builds our layer: q/k/v
-> attn.wqkv; per-expert gate/up/down -> mlp.w_gate_up [E, C, 2I] and mlp.w_down [E, I, C]; dense gate/up ->
mlp.w_gate_up; a shared expert -> mlp.shared (gate/up fused) and mlp.shared_gate. Matrices have shape [in, out]
(their memory layout: linear.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .decoder_args import DecoderArgs
from .key_table import KeyTable

if TYPE_CHECKING:
    import torch


def add_attention(table: KeyTable, key: str, ours: str, a: DecoderArgs, qk_norm: bool = True) -> None:
    """`self_attn.{q,k,v,o}_proj` (+ q/k biases when `attention_bias`) and the q/k RMSNorms."""
    C, D, q, kv = a.dim, a.head_dim, a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim
    for name, out_f in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
        table.linear(f"{key}self_attn.{name}", out_f, C, bias=a.attention_bias, ours=f"{ours}self_attn.{name}")
    table.linear(f"{key}self_attn.o_proj", C, q, ours=f"{ours}self_attn.o_proj")
    if qk_norm:
        table.norm(f"{key}self_attn.q_norm", D, ours=f"{ours}self_attn.q_norm")
        table.norm(f"{key}self_attn.k_norm", D, ours=f"{ours}self_attn.k_norm")


def add_swiglu(table: KeyTable, key: str, ours: str, dim: int, hidden: int) -> None:
    """`gate_proj`, `up_proj`, `down_proj` of a SwiGLU MLP."""
    table.linear(f"{key}gate_proj", hidden, dim, ours=f"{ours}gate_proj")
    table.linear(f"{key}up_proj", hidden, dim, ours=f"{ours}up_proj")
    table.linear(f"{key}down_proj", dim, hidden, ours=f"{ours}down_proj")


def add_layer(table: KeyTable, key: str, ours: str, a: DecoderArgs, sparse: bool) -> None:
    """One decoder layer: attention, its MLP (dense, or router + experts + optional shared expert), norms."""
    add_attention(table, key, ours, a)
    C = a.dim
    if sparse:
        table.linear(f"{key}mlp.gate", a.n_experts, C, ours=f"{ours}mlp.gate")
        for e in range(a.n_experts):
            add_swiglu(table, f"{key}mlp.experts.{e}.", f"{ours}mlp.experts.{e}.", C, a.moe_hidden)
        if a.shared_hidden:
            add_swiglu(table, f"{key}mlp.shared_expert.", f"{ours}mlp.shared_expert.", C, a.shared_hidden)
            table.linear(f"{key}mlp.shared_expert_gate", 1, C, ours=f"{ours}mlp.shared_expert_gate")
    else:
        add_swiglu(table, f"{key}mlp.", f"{ours}mlp.", C, a.dense_hidden)
    table.norm(f"{key}input_layernorm", C, ours=f"{ours}input_layernorm")
    table.norm(f"{key}post_attention_layernorm", C, ours=f"{ours}post_attention_layernorm")


def fuse_layer(a: DecoderArgs, i: int, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors of layer i (our pre-fusion names "layers.{i}.<checkpoint name>") -> our layer's state."""
    from .attention import fuse_qkv
    from .linear import to_in_out
    from .moe import fuse_gate_up, stack_experts

    p = f"layers.{i}."
    sa = p + "self_attn."
    out = {
        p + "attn_norm.weight": t[p + "input_layernorm.weight"],
        p + "mlp_norm.weight": t[p + "post_attention_layernorm.weight"],
        p + "attn.wqkv.weight": fuse_qkv(t[sa + "q_proj.weight"], t[sa + "k_proj.weight"], t[sa + "v_proj.weight"]),
        p + "attn.wo.weight": to_in_out(t[sa + "o_proj.weight"]),
    }
    if sa + "q_norm.weight" in t:
        out |= {p + "attn.q_norm.weight": t[sa + "q_norm.weight"], p + "attn.k_norm.weight": t[sa + "k_norm.weight"]}
    if a.attention_bias:
        out[p + "attn.wqkv.bias"] = fuse_qkv(t[sa + "q_proj.bias"], t[sa + "k_proj.bias"], t[sa + "v_proj.bias"])
    m = p + "mlp."
    if a.sparse[i]:
        ex = [f"{m}experts.{e}." for e in range(a.n_experts)]
        gate_up, down = stack_experts([t[q + "gate_proj.weight"] for q in ex], [t[q + "up_proj.weight"] for q in ex],
                                      [t[q + "down_proj.weight"] for q in ex])
        out |= {m + "router.weight": to_in_out(t[m + "gate.weight"]), m + "w_gate_up": gate_up, m + "w_down": down}
        if a.shared_hidden:
            s = m + "shared_expert."
            out |= {m + "shared.w_gate_up.weight": fuse_gate_up(t[s + "gate_proj.weight"], t[s + "up_proj.weight"]),
                    m + "shared.w_down.weight": to_in_out(t[s + "down_proj.weight"]),
                    m + "shared_gate.weight": to_in_out(t[m + "shared_expert_gate.weight"])}
    else:
        out |= {m + "w_gate_up.weight": fuse_gate_up(t[m + "gate_proj.weight"], t[m + "up_proj.weight"]),
                m + "w_down.weight": to_in_out(t[m + "down_proj.weight"])}
    return out
