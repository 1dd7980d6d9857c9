"""Checkpoint keys of the vision tower (under `thinker.visual.` on disk) -> VisionEncoder parameters."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .model import VisionArgs, VisionEncoder

if TYPE_CHECKING:
    import torch

    from ...runtime.checkpoint import Checkpoint

PREFIX = "thinker.visual."


def key_table(args: VisionArgs) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Checkpoint key (without prefix) -> (our parameter name, checkpoint shape)."""
    D, I, Dm, Do = args.hidden_size, args.intermediate_size, args.merged_dim, args.out_hidden_size
    P, TP, C = args.patch_size, args.temporal_patch_size, args.in_channels
    table = {
        "patch_embed.proj.weight": ("patch_embed.weight", (D, C, TP, P, P)),
        "patch_embed.proj.bias": ("patch_embed.bias", (D,)),
        "pos_embed.weight": ("pos_embed", (args.num_position_embeddings, D)),
    }

    def linear(src: str, dst: str, out_dim: int, in_dim: int | None = None) -> None:
        """A weight and its bias; in_dim None means a LayerNorm of size out_dim."""
        table[src + ".weight"] = (dst + ".weight", (out_dim,) if in_dim is None else (out_dim, in_dim))
        table[src + ".bias"] = (dst + ".bias", (out_dim,))

    for i in range(args.depth):
        b = f"blocks.{i}."
        linear(b + "norm1", b + "norm1", D)
        linear(b + "norm2", b + "norm2", D)
        linear(b + "attn.qkv", b + "attn.qkv", 3 * D, D)
        linear(b + "attn.proj", b + "attn.proj", D, D)
        linear(b + "mlp.linear_fc1", b + "fc1", I, D)
        linear(b + "mlp.linear_fc2", b + "fc2", D, I)
    mergers = [("merger.", "merger.", D)] + [(f"merger_list.{j}.", f"deepstack_mergers.{j}.", Dm)
                                            for j in range(len(args.deepstack_visual_indexes))]
    for src, dst, norm_dim in mergers:
        linear(src + "ln_q", dst + "norm", norm_dim)
        linear(src + "mlp.0", dst + "fc1", Dm, Dm)
        linear(src + "mlp.2", dst + "fc2", Do, Dm)
    return table


def load_vision_encoder(checkpoint: Checkpoint, prefix: str = PREFIX, dtype: torch.dtype | None = None,
                        device: str = "cpu") -> VisionEncoder:
    """Build the tower from config.json and load its weights (only the shards holding `prefix`)."""
    import torch

    args = VisionArgs.from_hf_config(checkpoint.config)
    table = key_table(args)
    tensors = checkpoint.load(prefix, {k: shape for k, (_, shape) in table.items()}, dtype=dtype, device=device)
    state = {table[k][0]: v for k, v in tensors.items()}
    state["patch_embed.weight"] = state["patch_embed.weight"].reshape(args.hidden_size, args.patch_dim)
    with torch.device("meta"):
        model = VisionEncoder(args)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
