"""Checkpoint keys of the Talker (under `talker.`) -> ours.

Decoder layers use the Thinker's table (nodes/thinker/weights.py) plus the shared expert:
`mlp.shared_expert.{gate,up,down}_proj` -> mlp.shared (gate/up fused), `mlp.shared_expert_gate` -> mlp.shared_gate.
`text_projection`/`hidden_projection.linear_fc{1,2}` -> fc{1,2}. The code predictor's codebook tables
`code_predictor.model.codec_embedding.{g}` are stacked into `residual_embedding` [G-1, Vc, C]: the Talker
sums them into its next input. Every matrix is stored [in, out].
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.linear import to_in_out
from ..common.moe import fuse_gate_up
from ..thinker.weights import convert_layer, layer_shapes

from .model import TalkerArgs


def load_state_dict(checkpoint: Any, a: TalkerArgs, root: str = "talker.", dtype: torch.dtype | None = None,
                    device: str = "cpu") -> dict[str, torch.Tensor]:
    t = a.text
    C, V, S = t.dim, t.vocab_size, t.shared_hidden
    shapes = {"codec_embedding.weight": (V, C), "norm.weight": (C,)}
    for i in range(t.n_layers):
        p = f"layers.{i}.mlp."
        shapes |= layer_shapes(t, i) | {p + "shared_expert.gate_proj.weight": (S, C),
                                         p + "shared_expert.up_proj.weight": (S, C),
                                         p + "shared_expert.down_proj.weight": (C, S),
                                         p + "shared_expert_gate.weight": (1, C)}
    tensors = checkpoint.load(root + "model.", shapes, dtype=dtype, device=device)
    state = {"codec_embedding.weight": tensors["codec_embedding.weight"], "norm.weight": tensors["norm.weight"]}
    for i in range(t.n_layers):
        p = f"layers.{i}.mlp."
        state |= convert_layer(t, i, tensors)
        state |= {p + "shared.w_gate_up.weight": fuse_gate_up(tensors[p + "shared_expert.gate_proj.weight"],
                                                               tensors[p + "shared_expert.up_proj.weight"]),
                  p + "shared.w_down.weight": to_in_out(tensors[p + "shared_expert.down_proj.weight"]),
                  p + "shared_gate.weight": to_in_out(tensors[p + "shared_expert_gate.weight"])}
    head = checkpoint.load(root + "codec_head.", {"weight": (V, C)}, dtype=dtype, device=device)
    state["codec_head.weight"] = to_in_out(head["weight"])
    H = a.resize_hidden
    for name in ("text_projection", "hidden_projection"):
        proj = checkpoint.load(f"{root}{name}.", {"linear_fc1.weight": (H, a.thinker_dim), "linear_fc1.bias": (H,),
                                                  "linear_fc2.weight": (C, H), "linear_fc2.bias": (C,)},
                               dtype=dtype, device=device)
        for k in (1, 2):
            state[f"{name}.fc{k}.weight"] = to_in_out(proj[f"linear_fc{k}.weight"])
            state[f"{name}.fc{k}.bias"] = proj[f"linear_fc{k}.bias"]
    G = a.n_groups
    tables = checkpoint.load(root + "code_predictor.model.codec_embedding.",
                             {f"{g}.weight": (a.codebook_size, C) for g in range(G - 1)}, dtype=dtype, device=device)
    state["residual_embedding"] = torch.stack([tables[f"{g}.weight"] for g in range(G - 1)])
    return state


def load_talker(checkpoint: Any, root: str = "talker.", dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """A Talker in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    from ..common.rope import inv_freq, mrope_axis_map

    from .model import Talker

    args = TalkerArgs.from_hf_config(checkpoint.config)
    with torch.device("meta"):
        model = Talker(args)
    model.load_state_dict(load_state_dict(checkpoint, args, root, dtype, device), assign=True, strict=True)
    model.freqs = inv_freq(args.text.head_dim, args.text.rope_theta).to(device)
    model.axis_map = mrope_axis_map(args.text.head_dim, args.text.mrope_section).to(device)
    model.prepare()
    return model.eval()
