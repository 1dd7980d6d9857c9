"""The code predictor's key table (under `talker.code_predictor.`) and its loader.

Decoder layers are dense (nodes/common/decoder_weights.py). `model.codec_embedding.{g}` are stacked into
codec_embedding [G-1, Vc, C], `lm_head.{g}` into heads [G-1, C, Vc] (stored [in, out]). The talker's
`talker.model.codec_embedding` (code 0 of the prefill; borrowed: the Talker's table writes it) becomes
talker_embedding.
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.decoder_weights import add_layer, fuse_layer
from ..common.key_table import EMBED, KeyTable, build_on_meta

from .model import CodePredictorArgs


def key_table(config: dict[str, Any], root: str = "talker.code_predictor.", talker_root: str = "talker.") -> KeyTable:
    """Every tensor the code predictor reads, from the full config.json dict (or its talker_config)."""
    a = CodePredictorArgs.from_hf_config(config)
    t = a.text
    table = KeyTable("", scopes=(f"{root}model.", f"{root}lm_head.", f"{talker_root}model.codec_embedding."))
    for i in range(t.n_layers):
        add_layer(table, f"{root}model.layers.{i}.", f"layers.{i}.", t, sparse=False)
    table.norm(f"{root}model.norm", t.dim, ours="norm")
    for g in range(a.n_groups - 1):
        table.add(f"{root}model.codec_embedding.{g}.weight", (t.vocab_size, t.dim), EMBED, f"codec_embedding.{g}")
    for g in range(a.n_groups - 1):
        table.linear(f"{root}lm_head.{g}", t.vocab_size, t.dim, ours=f"heads.{g}", gain=2.0)
    table.add(f"{talker_root}model.codec_embedding.weight", (a.talker_vocab, t.dim), EMBED,
              "talker_embedding.weight", borrowed=True)
    return table


def load_code_predictor(checkpoint: Any, root: str = "talker.code_predictor.", talker_root: str = "talker.",
                        dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """A CodePredictor in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    from ..common.linear import to_in_out

    from .model import CodePredictor

    args = CodePredictorArgs.from_hf_config(checkpoint.config)
    t = key_table(checkpoint.config, root, talker_root).load(checkpoint, dtype=dtype, device=device)
    groups = range(args.n_groups - 1)
    state = {"norm.weight": t["norm.weight"], "talker_embedding.weight": t["talker_embedding.weight"],
             "codec_embedding": torch.stack([t[f"codec_embedding.{g}"] for g in groups]),
             "heads": torch.stack([to_in_out(t[f"heads.{g}.weight"]) for g in groups])}
    for i in range(args.text.n_layers):
        state |= fuse_layer(args.text, i, t)
    return build_on_meta(CodePredictor, args, state, device)
