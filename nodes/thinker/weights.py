"""Checkpoint keys of the Thinker text model (under `thinker.model.` and `thinker.lm_head.`) -> ours.

Every matrix is stored [in, out] (nodes/common/linear.py). Fusions at load: q/k/v projections -> attn.wqkv;
per-expert gate/up/down -> mlp.w_gate_up [E, C, 2I] and mlp.w_down [E, I, C]; dense gate/up -> mlp.w_gate_up.
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.attention import fuse_qkv
from ..common.linear import to_in_out
from ..common.moe import fuse_gate_up, stack_experts

from .model import ThinkerArgs


def layer_shapes(a: ThinkerArgs, i: int) -> dict[str, tuple[int, ...]]:
    """Checkpoint keys (relative to `<root>model.`) of layer i and their shapes."""
    p, C, D = f"layers.{i}.", a.dim, a.head_dim
    shapes = {
        p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
        p + "self_attn.q_proj.weight": (a.n_heads * D, C), p + "self_attn.k_proj.weight": (a.n_kv_heads * D, C),
        p + "self_attn.v_proj.weight": (a.n_kv_heads * D, C), p + "self_attn.o_proj.weight": (C, a.n_heads * D),
        p + "self_attn.q_norm.weight": (D,), p + "self_attn.k_norm.weight": (D,),
    }
    if a.attention_bias:
        shapes |= {p + "self_attn.q_proj.bias": (a.n_heads * D,), p + "self_attn.k_proj.bias": (a.n_kv_heads * D,),
                   p + "self_attn.v_proj.bias": (a.n_kv_heads * D,)}
    if a.sparse[i]:
        shapes[p + "mlp.gate.weight"] = (a.n_experts, C)
        for e in range(a.n_experts):
            q = f"{p}mlp.experts.{e}."
            shapes |= {q + "gate_proj.weight": (a.moe_hidden, C), q + "up_proj.weight": (a.moe_hidden, C),
                       q + "down_proj.weight": (C, a.moe_hidden)}
    else:
        shapes |= {p + "mlp.gate_proj.weight": (a.dense_hidden, C), p + "mlp.up_proj.weight": (a.dense_hidden, C),
                   p + "mlp.down_proj.weight": (C, a.dense_hidden)}
    return shapes


def convert_layer(a: ThinkerArgs, i: int, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint tensors of layer i (keys as in layer_shapes) -> our state dict entries."""
    p, o = f"layers.{i}.", f"layers.{i}."
    sa = p + "self_attn."
    out = {
        o + "attn_norm.weight": t[p + "input_layernorm.weight"],
        o + "mlp_norm.weight": t[p + "post_attention_layernorm.weight"],
        o + "attn.wqkv.weight": fuse_qkv(t[sa + "q_proj.weight"], t[sa + "k_proj.weight"], t[sa + "v_proj.weight"]),
        o + "attn.wo.weight": to_in_out(t[sa + "o_proj.weight"]),
        o + "attn.q_norm.weight": t[sa + "q_norm.weight"], o + "attn.k_norm.weight": t[sa + "k_norm.weight"],
    }
    if a.attention_bias:
        out[o + "attn.wqkv.bias"] = fuse_qkv(t[sa + "q_proj.bias"], t[sa + "k_proj.bias"], t[sa + "v_proj.bias"])
    if a.sparse[i]:
        ex = [f"{p}mlp.experts.{e}." for e in range(a.n_experts)]
        gate_up, down = stack_experts([t[q + "gate_proj.weight"] for q in ex], [t[q + "up_proj.weight"] for q in ex],
                                      [t[q + "down_proj.weight"] for q in ex])
        out |= {o + "mlp.router.weight": to_in_out(t[p + "mlp.gate.weight"]), o + "mlp.w_gate_up": gate_up,
                o + "mlp.w_down": down}
    else:
        out |= {o + "mlp.w_gate_up.weight": fuse_gate_up(t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"]),
                o + "mlp.w_down.weight": to_in_out(t[p + "mlp.down_proj.weight"])}
    return out


def load_state_dict(checkpoint: Any, args: ThinkerArgs, root: str = "thinker.", dtype: torch.dtype | None = None,
                    device: str = "cpu") -> dict[str, torch.Tensor]:
    """Our Thinker state dict from `<root>model.*` and `<root>lm_head.*` (only those shards are opened)."""
    V, C = args.vocab_size, args.dim
    shapes = {"embed_tokens.weight": (V, C), "norm.weight": (C,)}
    for i in range(args.n_layers):
        shapes |= layer_shapes(args, i)
    tensors = checkpoint.load(root + "model.", shapes, dtype=dtype, device=device)
    state = {"embed_tokens.weight": tensors.pop("embed_tokens.weight"), "norm.weight": tensors.pop("norm.weight")}
    for i in range(args.n_layers):
        state |= convert_layer(args, i, tensors)
    lm_head = checkpoint.load(root + "lm_head.", {"weight": (V, C)}, dtype=dtype, device=device)["weight"]
    state["lm_head.weight"] = to_in_out(lm_head)
    return state


def load_thinker(checkpoint: Any, root: str = "thinker.", dtype: torch.dtype = torch.float32,
                 device: str = "cpu"):
    """A Thinker in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    from ..common.rope import inv_freq, mrope_axis_map

    from .model import Thinker

    args = ThinkerArgs.from_hf_config(checkpoint.config)
    with torch.device("meta"):  # no random init: every parameter comes from the checkpoint
        model = Thinker(args)
    model.load_state_dict(load_state_dict(checkpoint, args, root, dtype, device), assign=True, strict=True)
    model.freqs = inv_freq(args.head_dim, args.rope_theta).to(device)  # non-persistent buffers
    model.axis_map = mrope_axis_map(args.head_dim, args.mrope_section).to(device)
    model.prepare()
    return model.eval()
