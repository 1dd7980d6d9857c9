"""The vision tower's key table (under `thinker.visual.` on disk) and its loader."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.key_table import SMALL, KeyTable, build_on_meta, fan_in_init

from .model import VisionArgs, VisionEncoder

if TYPE_CHECKING:
    import torch

PREFIX = "thinker.visual."


def key_table(config: dict[str, Any], prefix: str = PREFIX) -> KeyTable:
    """Every tensor of the tower, from the full config.json dict (or its thinker_config / vision_config)."""
    a = VisionArgs.from_hf_config(config)
    D, I, Dm, Do = a.hidden_size, a.intermediate_size, a.merged_dim, a.out_hidden_size
    P, TP, C = a.patch_size, a.temporal_patch_size, a.in_channels
    table = KeyTable(prefix)
    table.add("patch_embed.proj.weight", (D, C, TP, P, P), fan_in_init(C * TP * P * P), "patch_embed.weight")
    table.add("patch_embed.proj.bias", (D,), SMALL, "patch_embed.bias")
    table.add("pos_embed.weight", (a.num_position_embeddings, D), ("normal", 0.0, 0.5), "pos_embed")
    for i in range(a.depth):
        b = f"blocks.{i}."
        table.norm(b + "norm1", D, bias=True)
        table.norm(b + "norm2", D, bias=True)
        table.linear(b + "attn.qkv", 3 * D, D, bias=True)
        table.linear(b + "attn.proj", D, D, bias=True)
        table.linear(b + "mlp.linear_fc1", I, D, bias=True, ours=b + "fc1")
        table.linear(b + "mlp.linear_fc2", D, I, bias=True, ours=b + "fc2")
    mergers = [("merger.", "merger.", D)] + [(f"merger_list.{j}.", f"deepstack_mergers.{j}.", Dm)
                                            for j in range(len(a.deepstack_visual_indexes))]
    for src, dst, norm_dim in mergers:
        table.norm(src + "ln_q", norm_dim, bias=True, ours=dst + "norm")
        table.linear(src + "mlp.0", Dm, Dm, bias=True, ours=dst + "fc1")
        table.linear(src + "mlp.2", Do, Dm, bias=True, ours=dst + "fc2")
    return table


def load_vision_encoder(checkpoint: Any, prefix: str = PREFIX, dtype: torch.dtype | None = None,
                        device: str = "cpu") -> VisionEncoder:
    """Build the tower from config.json and load its weights (only the shards holding `prefix`)."""
    args = VisionArgs.from_hf_config(checkpoint.config)
    state = key_table(checkpoint.config, prefix).load(checkpoint, dtype=dtype, device=device)
    state["patch_embed.weight"] = state["patch_embed.weight"].reshape(args.hidden_size, args.patch_dim)
    return build_on_meta(VisionEncoder, args, state, device)
