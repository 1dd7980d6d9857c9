"""The Thinker text model's key table (`<root>model.*`, `<root>lm_head.*`) and its loader.

Fusions at load (nodes/common/decoder_weights.py): q/k/v -> attn.wqkv, experts stacked, gate/up fused; every
matrix is stored [in, out] (nodes/common/linear.py).
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.decoder_weights import add_layer, fuse_layer
from ..common.key_table import EMBED, KeyTable, build_on_meta

from .model import ThinkerArgs


def key_table(config: dict[str, Any], root: str = "thinker.") -> KeyTable:
    """Every tensor of the Thinker text model, from the full config.json dict (or its thinker_config)."""
    a = ThinkerArgs.from_hf_config(config)
    table = KeyTable(root, scopes=("model.", "lm_head."))
    table.add("model.embed_tokens.weight", (a.vocab_size, a.dim), EMBED, "embed_tokens.weight")
    for i in range(a.n_layers):
        add_layer(table, f"model.layers.{i}.", f"layers.{i}.", a, a.sparse[i])
    table.norm("model.norm", a.dim, ours="norm")
    table.linear("lm_head", a.vocab_size, a.dim, ours="lm_head", gain=2.0)
    return table


def load_thinker(checkpoint: Any, root: str = "thinker.", dtype: torch.dtype = torch.float32,
                 device: str = "cpu"):
    """A Thinker in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    from ..common.linear import to_in_out

    from .model import Thinker

    args = ThinkerArgs.from_hf_config(checkpoint.config)
    t = key_table(checkpoint.config, root).load(checkpoint, dtype=dtype, device=device)
    state = {"embed_tokens.weight": t["embed_tokens.weight"], "norm.weight": t["norm.weight"],
             "lm_head.weight": to_in_out(t["lm_head.weight"])}
    for i in range(args.n_layers):
        state |= fuse_layer(args, i, t)
    return build_on_meta(Thinker, args, state, device)
