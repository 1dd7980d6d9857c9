"""The vision tower's key table (on-disk `thinker.visual.`) and its loader; the Conv3d patch embedding is
loaded as the equal Linear on flattened patches."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.key_table import KeyTable, build_on_meta, fan_in_init
from .model import VisionArgs, VisionEncoder

if TYPE_CHECKING:
    import torch

PREFIX = "thinker.visual."


def key_table(config: dict[str, Any], prefix: str = PREFIX) -> KeyTable:
    """Every tensor under `prefix`, from the full config.json dict (thinker_config.vision_config)."""
    a = VisionArgs.from_hf_config(config)
    D, I, Dm = a.hidden_size, a.intermediate_size, a.merged_dim
    table = KeyTable(prefix)
    table.add("patch_embed.proj.weight", (D, a.in_channels, a.temporal_patch_size, a.patch_size, a.patch_size),
              fan_in_init(a.patch_dim), ours="patch_embed.weight")
    for i in range(a.depth):
        b = f"blocks.{i}."
        table.norm(b + "norm1", D)
        table.norm(b + "norm2", D)
        for name in ("q", "k", "v", "proj"):
            table.linear(b + "attn." + name, D, D, bias=True)
        table.linear(b + "mlp.gate_proj", I, D, bias=True, ours=b + "gate")
        table.linear(b + "mlp.up_proj", I, D, bias=True, ours=b + "up")
        table.linear(b + "mlp.down_proj", D, I, bias=True, ours=b + "down")
    table.norm("merger.ln_q", D, ours="merger.norm")
    table.linear("merger.mlp.0", Dm, Dm, bias=True, ours="merger.fc1")
    table.linear("merger.mlp.2", a.out_hidden_size, Dm, bias=True, ours="merger.fc2")
    return table


def load_vision_encoder(checkpoint: Any, dtype: torch.dtype | None = None, device: str = "cpu",
                        prefix: str = PREFIX) -> VisionEncoder:
    """The tower built from config.json, its weights read from `prefix` only (shapes checked)."""
    args = VisionArgs.from_hf_config(checkpoint.config)
    state = key_table(checkpoint.config, prefix).load(checkpoint, dtype=dtype, device=device)
    state["patch_embed.weight"] = state["patch_embed.weight"].reshape(args.hidden_size, args.patch_dim)
    return build_on_meta(VisionEncoder, args, state, device)
