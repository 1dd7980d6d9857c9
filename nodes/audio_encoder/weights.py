"""Checkpoint keys (under `thinker.audio_tower.`) -> AudioEncoder parameters; q/k/v are stacked into `qkv`."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .model import AudioEncoderArgs

if TYPE_CHECKING:
    import torch

    from ...runtime.checkpoint import Checkpoint

# checkpoint name -> our name; "{i}" is the layer index. Keys of one of our names listed together are stacked.
TABLE: dict[str, str] = {
    "conv2d1.{p}": "conv1.{p}", "conv2d2.{p}": "conv2.{p}", "conv2d3.{p}": "conv3.{p}",
    "conv_out.weight": "conv_out.weight",
    "layers.{i}.self_attn_layer_norm.{p}": "layers.{i}.attn_norm.{p}",
    "layers.{i}.self_attn.q_proj.{p}": "layers.{i}.qkv.{p}",
    "layers.{i}.self_attn.k_proj.{p}": "layers.{i}.qkv.{p}",
    "layers.{i}.self_attn.v_proj.{p}": "layers.{i}.qkv.{p}",
    "layers.{i}.self_attn.out_proj.{p}": "layers.{i}.out.{p}",
    "layers.{i}.final_layer_norm.{p}": "layers.{i}.mlp_norm.{p}",
    "layers.{i}.fc1.{p}": "layers.{i}.fc1.{p}",
    "layers.{i}.fc2.{p}": "layers.{i}.fc2.{p}",
    "ln_post.{p}": "ln_post.{p}", "proj1.{p}": "proj1.{p}", "proj2.{p}": "proj2.{p}",
}


def checkpoint_shapes(args: AudioEncoderArgs) -> dict[str, tuple[int, ...]]:
    """Every tensor the checkpoint must hold under the prefix, with its shape."""
    ch, d, ffn = args.downsample_hidden_size, args.d_model, args.encoder_ffn_dim
    shapes: dict[str, tuple[int, ...]] = {
        "conv2d1.weight": (ch, 1, 3, 3), "conv2d1.bias": (ch,),
        "conv2d2.weight": (ch, ch, 3, 3), "conv2d2.bias": (ch,),
        "conv2d3.weight": (ch, ch, 3, 3), "conv2d3.bias": (ch,),
        "conv_out.weight": (d, ch * args.conv_freq),
        "ln_post.weight": (d,), "ln_post.bias": (d,),
        "proj1.weight": (d, d), "proj1.bias": (d,),
        "proj2.weight": (args.output_dim, d), "proj2.bias": (args.output_dim,),
    }
    for i in range(args.encoder_layers):
        layer = {"self_attn_layer_norm": (d,), "final_layer_norm": (d,)}
        shapes.update({f"layers.{i}.{name}.{p}": shape for name, shape in layer.items() for p in ("weight", "bias")})
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"layers.{i}.self_attn.{name}.weight"] = (d, d)
            shapes[f"layers.{i}.self_attn.{name}.bias"] = (d,)
        shapes.update({f"layers.{i}.fc1.weight": (ffn, d), f"layers.{i}.fc1.bias": (ffn,),
                       f"layers.{i}.fc2.weight": (d, ffn), f"layers.{i}.fc2.bias": (d,)})
    return shapes


def our_name(key: str) -> str:
    """Our parameter name for a checkpoint key (without the prefix)."""
    layer = re.match(r"layers\.(\d+)\.(.*)", key)
    generic = f"layers.{{i}}.{layer.group(2)}" if layer else key
    stem, p = generic.rsplit(".", 1)
    return (TABLE.get(generic) or TABLE[stem + ".{p}"]).format(i=layer.group(1) if layer else None, p=p)


def load_audio_encoder_weights(checkpoint: Checkpoint, prefix: str, args: AudioEncoderArgs,
                               dtype: torch.dtype, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Our state dict, read from `prefix` only (missing, extra or mis-shaped tensors fail with both shapes)."""
    import torch

    tensors = checkpoint.load(prefix, checkpoint_shapes(args), dtype=dtype, device=device)
    grouped: dict[str, list[torch.Tensor]] = {}
    for key in sorted(tensors, key=_qkv_order):
        grouped.setdefault(our_name(key), []).append(tensors[key])
    return {name: parts[0] if len(parts) == 1 else torch.cat(parts) for name, parts in grouped.items()}


def _qkv_order(key: str) -> tuple[int, str]:
    """Sort q, then k, then v projections so that they stack in that order."""
    rank = next((n for n, tag in enumerate((".q_proj.", ".k_proj.", ".v_proj.")) if tag in key), 3)
    return rank, key
