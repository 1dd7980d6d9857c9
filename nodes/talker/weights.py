"""The Talker's key table (under `talker.`, without the code predictor's own tensors) and its loader.

Decoder layers (every one MoE with a shared expert) are fused as in nodes/common/decoder_weights.py.
`text_projection`/`hidden_projection.linear_fc{1,2}` -> fc{1,2}. The code predictor's codebook tables
`code_predictor.model.codec_embedding.{g}` (borrowed: its table writes them) are stacked into
`residual_embedding` [G-1, Vc, C]: the Talker sums them into its next input. Every matrix is stored [in, out].
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.decoder_weights import add_layer, fuse_layer
from ..common.key_table import EMBED, KeyTable, build_on_meta

from .model import TalkerArgs

PROJECTIONS = ("text_projection", "hidden_projection")


def key_table(config: dict[str, Any], root: str = "talker.") -> KeyTable:
    """Every tensor the Talker reads, from the full config.json dict (or its talker_config)."""
    a = TalkerArgs.from_hf_config(config)
    t = a.text
    table = KeyTable(root, scopes=("model.", *(f"{p}." for p in PROJECTIONS), "codec_head.",
                                   "code_predictor.model.codec_embedding."))
    table.add("model.codec_embedding.weight", (t.vocab_size, t.dim), EMBED, "codec_embedding.weight")
    for i in range(t.n_layers):
        add_layer(table, f"model.layers.{i}.", f"layers.{i}.", t, sparse=True)
    table.norm("model.norm", t.dim, ours="norm")
    for name in PROJECTIONS:
        table.linear(f"{name}.linear_fc1", a.resize_hidden, a.thinker_dim, bias=True, ours=f"{name}.fc1")
        table.linear(f"{name}.linear_fc2", t.dim, a.resize_hidden, bias=True, ours=f"{name}.fc2")
    table.linear("codec_head", t.vocab_size, t.dim, ours="codec_head", gain=2.0)
    for g in range(a.n_groups - 1):
        table.add(f"code_predictor.model.codec_embedding.{g}.weight", (a.codebook_size, t.dim), EMBED,
                  f"residual_embedding.{g}", borrowed=True)
    return table


def load_talker(checkpoint: Any, root: str = "talker.", dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """A Talker in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    from ..common.linear import to_in_out

    from .model import Talker

    args = TalkerArgs.from_hf_config(checkpoint.config)
    t = key_table(checkpoint.config, root).load(checkpoint, dtype=dtype, device=device)
    state = {"codec_embedding.weight": t["codec_embedding.weight"], "norm.weight": t["norm.weight"],
             "codec_head.weight": to_in_out(t["codec_head.weight"]),
             "residual_embedding": torch.stack([t[f"residual_embedding.{g}"] for g in range(args.n_groups - 1)])}
    for i in range(args.text.n_layers):
        state |= fuse_layer(args.text, i, t)
    for name in PROJECTIONS:
        for k in (1, 2):
            state[f"{name}.fc{k}.weight"] = to_in_out(t[f"{name}.fc{k}.weight"])
            state[f"{name}.fc{k}.bias"] = t[f"{name}.fc{k}.bias"]
    return build_on_meta(Talker, args, state, device)
