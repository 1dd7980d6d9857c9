"""Checkpoint keys of the Qwen2.5-Omni Talker (under `talker.`) -> ours, and the few Thinker embedding rows it
needs (under `thinker.model.`).

Fusions at load: q/k/v projections (and biases) -> attn.wqkv, gate/up -> mlp.w_gate_up; every matrix stored
[in, out] (nodes/common/linear.py).

The Talker reads the Thinker's `embed_tokens` at three ids only (the speaker's bos_token, text_eos, text_pad):
those rows are read from the safetensors file by slicing, not the table (152064 x 3584 in the released model:
1.1 GB in bfloat16).
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.attention import fuse_qkv
from ..common.key_table import EMBED, KeyTable, build_on_meta
from ..common.linear import to_in_out
from ..common.moe import fuse_gate_up

from .model import Talker, TalkerArgs


def talker_table(a: TalkerArgs, root: str = "talker.") -> KeyTable:
    t, table = a.text, KeyTable(root)
    C, H, K, D, E = t.dim, t.n_heads, t.n_kv_heads, t.head_dim, a.thinker_dim
    table.linear("thinker_to_talker_proj", C, E, bias=True)
    table.add("model.embed_tokens.weight", (t.vocab_size, E), EMBED)
    for i in range(t.n_layers):
        p = f"model.layers.{i}."
        table.norm(p + "input_layernorm", C)
        table.norm(p + "post_attention_layernorm", C)
        for name, out in (("q_proj", H * D), ("k_proj", K * D), ("v_proj", K * D)):
            table.linear(p + "self_attn." + name, out, C, bias=True)
        table.linear(p + "self_attn.o_proj", C, H * D)
        table.linear(p + "mlp.gate_proj", t.dense_hidden, C)
        table.linear(p + "mlp.up_proj", t.dense_hidden, C)
        table.linear(p + "mlp.down_proj", C, t.dense_hidden)
    table.norm("model.norm", C)
    table.linear("codec_head", t.vocab_size, C)
    return table


def convert(a: TalkerArgs, s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint-named tensors -> our state dict."""
    out = {"embed_tokens.weight": s["model.embed_tokens.weight"], "norm.weight": s["model.norm.weight"],
           "thinker_to_talker_proj.weight": to_in_out(s["thinker_to_talker_proj.weight"]),
           "thinker_to_talker_proj.bias": s["thinker_to_talker_proj.bias"],
           "codec_head.weight": to_in_out(s["codec_head.weight"])}
    for i in range(a.text.n_layers):
        p, o = f"model.layers.{i}.", f"layers.{i}."
        sa = p + "self_attn."
        out |= {o + "attn_norm.weight": s[p + "input_layernorm.weight"],
                o + "mlp_norm.weight": s[p + "post_attention_layernorm.weight"],
                o + "attn.wqkv.weight": fuse_qkv(*(s[f"{sa}{n}_proj.weight"] for n in "qkv")),
                o + "attn.wqkv.bias": fuse_qkv(*(s[f"{sa}{n}_proj.bias"] for n in "qkv")),
                o + "attn.wo.weight": to_in_out(s[sa + "o_proj.weight"]),
                o + "mlp.w_gate_up.weight": fuse_gate_up(s[p + "mlp.gate_proj.weight"], s[p + "mlp.up_proj.weight"]),
                o + "mlp.w_down.weight": to_in_out(s[p + "mlp.down_proj.weight"])}
    return out


def load_talker(checkpoint: Any, root: str = "talker.", dtype: torch.dtype = torch.float32,
                device: str = "cpu") -> Talker:
    """A Talker in eval mode with the checkpoint's weights, on `device` in `dtype`."""
    args = TalkerArgs.from_hf_config(checkpoint.config)
    state = talker_table(args, root).load(checkpoint, dtype=dtype, device=device)
    return build_on_meta(Talker, args, convert(args, state), device)


def thinker_embed_table(config: dict[str, Any], root: str = "thinker.") -> KeyTable:
    c = config.get("thinker_config", config)
    c = c.get("text_config", c)
    table = KeyTable(root + "model.embed_tokens.")
    table.add("weight", (c["vocab_size"], c["hidden_size"]), EMBED)
    return table


def embedding_rows(checkpoint: Any, table: KeyTable, rows: list[int], dtype: torch.dtype | None = None,
                   device: str = "cpu") -> torch.Tensor:
    """rows of the table's one embedding [len(rows), E], read by slicing the safetensors file (the shape is
    checked against the header first). On the meta device (a checkpoint probe): the table's usual load."""
    (key,) = table.keys
    if device == "meta":
        return table.load(checkpoint, dtype=dtype, device=device)[key.ours][rows]
    from safetensors import safe_open

    problems, fits = checkpoint.match(table.prefix, table.shapes())
    if problems:
        raise checkpoint.mismatch_error(table.prefix, problems)
    full = fits[key.checkpoint]
    with safe_open(str(checkpoint.path / checkpoint.shard_of[full]), framework="pt", device="cpu") as handle:
        part = handle.get_slice(full)
        out = torch.cat([part[r:r + 1] for r in rows])
    checkpoint.read.add(full)
    return out.to(device=device, dtype=dtype or out.dtype)
