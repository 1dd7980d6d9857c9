"""Checkpoint keys of the Qwen2.5-Omni Thinker text model (under `thinker.model.` and `thinker.lm_head.`) -> ours.

Every matrix is stored [in, out] (nodes/common/linear.py). Fusions at load: q/k/v projections (and their biases)
-> attn.wqkv, gate/up -> mlp.w_gate_up. With thinker_config `tie_word_embeddings` the head is embed_tokens (an
lm_head tensor may be there too, and is ignored, as transformers ties over it).
"""
from __future__ import annotations

from typing import Any

import torch

from ..common.attention import fuse_qkv
from ..common.key_table import EMBED, KeyTable, build_on_meta, fan_in_init
from ..common.linear import to_in_out
from ..common.moe import fuse_gate_up

from .model import Qwen25Thinker, thinker_args


def tied(config: dict[str, Any]) -> bool:
    """Only the thinker-level flag ties lm_head to embed_tokens (text_config's is ignored, as in transformers)."""
    return bool(config["thinker_config"].get("tie_word_embeddings", False))


def key_table(config: dict[str, Any], prefix: str = "thinker.") -> KeyTable:
    """Every tensor of the text model, from the FULL config.json dict (on-disk names as in reference 5.4)."""
    a = thinker_args(config)
    C, D, H, K = a.dim, a.head_dim, a.n_heads, a.n_kv_heads
    table = KeyTable(prefix)
    table.add("model.embed_tokens.weight", (a.vocab_size, C), EMBED, "embed_tokens.weight")
    for i in range(a.n_layers):
        p, o = f"model.layers.{i}.", f"layers.{i}."
        table.norm(p + "input_layernorm", C, ours=o + "attn_norm")
        table.norm(p + "post_attention_layernorm", C, ours=o + "mlp_norm")
        for name, heads in (("q_proj", H), ("k_proj", K), ("v_proj", K)):
            table.linear(p + "self_attn." + name, heads * D, C, bias=True, ours=o + "attn." + name)
        table.linear(p + "self_attn.o_proj", C, H * D, ours=o + "attn.wo")
        table.linear(p + "mlp.gate_proj", a.dense_hidden, C, ours=o + "mlp.gate")
        table.linear(p + "mlp.up_proj", a.dense_hidden, C, ours=o + "mlp.up")
        table.linear(p + "mlp.down_proj", C, a.dense_hidden, ours=o + "mlp.w_down")
    table.norm("model.norm", C, ours="norm")
    table.add("lm_head.weight", (a.vocab_size, C), fan_in_init(C), "lm_head.weight", optional=tied(config))
    return table


def load_thinker(checkpoint: Any, prefix: str = "thinker.", dtype: torch.dtype | None = torch.float32,
                 device: str = "cpu") -> Qwen25Thinker:
    """The Thinker in eval mode with the checkpoint's weights, on `device` in `dtype` (only the `model.` and
    `lm_head.` tensors under `prefix` are read)."""
    args = thinker_args(checkpoint.config)
    table = key_table(checkpoint.config, prefix)
    t = {}
    for part in ("model.", "lm_head."):
        t |= table.under(part).load(checkpoint, dtype=dtype, device=device)
    head = t["embed_tokens.weight"] if tied(checkpoint.config) else t["lm_head.weight"]
    state = {"embed_tokens.weight": t["embed_tokens.weight"], "norm.weight": t["norm.weight"],
             "lm_head.weight": to_in_out(head)}
    for i in range(args.n_layers):
        o = f"layers.{i}."
        a = o + "attn."
        state |= {
            o + "attn_norm.weight": t[o + "attn_norm.weight"], o + "mlp_norm.weight": t[o + "mlp_norm.weight"],
            a + "wqkv.weight": fuse_qkv(*(t[f"{a}{n}_proj.weight"] for n in "qkv")),
            a + "wqkv.bias": fuse_qkv(*(t[f"{a}{n}_proj.bias"] for n in "qkv")),
            a + "wo.weight": to_in_out(t[a + "wo.weight"]),
            o + "mlp.w_gate_up.weight": fuse_gate_up(t[o + "mlp.gate.weight"], t[o + "mlp.up.weight"]),
            o + "mlp.w_down.weight": to_in_out(t[o + "mlp.w_down.weight"]),
        }
    return build_on_meta(Qwen25Thinker, args, state, device)
