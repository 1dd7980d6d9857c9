"""Checkpoint keys of the code predictor (under `talker.code_predictor.`) -> ours.

Decoder layers use the Thinker's dense-layer table (nodes/thinker/weights.py). `model.codec_embedding.{g}`
are stacked into codec_embedding [G-1, Vc, C], `lm_head.{g}` into heads [G-1, C, Vc] (stored [in, out]).
The talker's `talker.model.codec_embedding` (code 0 of the prefill) becomes talker_embedding.
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.linear import to_in_out
from ..thinker.weights import convert_layer, layer_shapes

from .model import CodePredictorArgs


def load_state_dict(checkpoint: Any, a: CodePredictorArgs, root: str = "talker.code_predictor.",
                    talker_root: str = "talker.", dtype: torch.dtype | None = None,
                    device: str = "cpu") -> dict[str, torch.Tensor]:
    t = a.text
    C, Vc, G = t.dim, t.vocab_size, a.n_groups
    shapes = {"norm.weight": (C,)} | {f"codec_embedding.{g}.weight": (Vc, C) for g in range(G - 1)}
    for i in range(t.n_layers):
        shapes |= layer_shapes(t, i)
    tensors = checkpoint.load(root + "model.", shapes, dtype=dtype, device=device)
    state = {"norm.weight": tensors["norm.weight"],
             "codec_embedding": torch.stack([tensors[f"codec_embedding.{g}.weight"] for g in range(G - 1)])}
    for i in range(t.n_layers):
        state |= convert_layer(t, i, tensors)
    heads = checkpoint.load(root + "lm_head.", {f"{g}.weight": (Vc, C) for g in range(G - 1)}, dtype=dtype,
                            device=device)
    state["heads"] = torch.stack([to_in_out(heads[f"{g}.weight"]) for g in range(G - 1)])
    table = checkpoint.load(talker_root + "model.codec_embedding.", {"weight": (a.talker_vocab, C)}, dtype=dtype,
                            device=device)
    state["talker_embedding.weight"] = table["weight"]
    return state


def load_code_predictor(checkpoint: Any, root: str = "talker.code_predictor.", talker_root: str = "talker.",
                        dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """A CodePredictor in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    from ..common.rope import inv_freq

    from .model import CodePredictor

    args = CodePredictorArgs.from_hf_config(checkpoint.config)
    with torch.device("meta"):
        model = CodePredictor(args)
    model.load_state_dict(load_state_dict(checkpoint, args, root, talker_root, dtype, device), assign=True,
                          strict=True)
    model.freqs = inv_freq(args.text.head_dim, args.text.rope_theta).to(device)
    model.prepare()
    return model.eval()
