"""Checkpoint keys (under `code2wav.`) -> Code2Wav parameters.

The pre-transformer is renamed and fused (q/k/v -> `attn.wqkv`, gate/up -> `mlp.w_gate_up`, matrices stored
[in, out]); the upsampler and decoder keep the checkpoint's names (`upsample.*`, `decoder.*`) unchanged.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .model import Code2WavArgs

if TYPE_CHECKING:
    import torch

    from ...runtime.checkpoint import Checkpoint

# checkpoint name (without `pre_transformer.`) -> our name; keys that share one of our names are concatenated
# in the order listed here, then matrices are transposed to [in, out].
TABLE: dict[str, str] = {
    "layers.{i}.self_attn.q_proj.{p}": "layers.{i}.attn.wqkv.{p}",
    "layers.{i}.self_attn.k_proj.{p}": "layers.{i}.attn.wqkv.{p}",
    "layers.{i}.self_attn.v_proj.{p}": "layers.{i}.attn.wqkv.{p}",
    "layers.{i}.self_attn.o_proj.{p}": "layers.{i}.attn.wo.{p}",
    "layers.{i}.mlp.gate_proj.{p}": "layers.{i}.mlp.w_gate_up.{p}",
    "layers.{i}.mlp.up_proj.{p}": "layers.{i}.mlp.w_gate_up.{p}",
    "layers.{i}.mlp.down_proj.{p}": "layers.{i}.mlp.w_down.{p}",
    "layers.{i}.input_layernorm.{p}": "layers.{i}.attn_norm.{p}",
    "layers.{i}.post_attention_layernorm.{p}": "layers.{i}.mlp_norm.{p}",
    "layers.{i}.self_attn_layer_scale.scale": "layers.{i}.attn_scale",
    "layers.{i}.mlp_layer_scale.scale": "layers.{i}.mlp_scale",
    "norm.{p}": "norm.{p}",
}
ORDER = list(TABLE)


def checkpoint_shapes(args: Code2WavArgs) -> dict[str, tuple[int, ...]]:
    """Every tensor the checkpoint must hold under the prefix, with its shape."""
    C, F, G = args.hidden_size, args.intermediate_size, args.num_quantizers
    q, kv = args.num_attention_heads * args.head_dim, args.num_key_value_heads * args.head_dim
    shapes: dict[str, tuple[int, ...]] = {"code_embedding.weight": (G * args.codebook_size, C),
                                          "pre_transformer.norm.weight": (C,)}
    for i in range(args.num_hidden_layers):
        layer = {"self_attn.q_proj.weight": (q, C), "self_attn.k_proj.weight": (kv, C),
                 "self_attn.v_proj.weight": (kv, C), "self_attn.o_proj.weight": (C, q),
                 "mlp.gate_proj.weight": (F, C), "mlp.up_proj.weight": (F, C), "mlp.down_proj.weight": (C, F),
                 "input_layernorm.weight": (C,), "post_attention_layernorm.weight": (C,),
                 "self_attn_layer_scale.scale": (C,), "mlp_layer_scale.scale": (C,)}
        if args.attention_bias:
            layer.update({"self_attn.q_proj.bias": (q,), "self_attn.k_proj.bias": (kv,),
                          "self_attn.v_proj.bias": (kv,), "self_attn.o_proj.bias": (C,)})
        shapes.update({f"pre_transformer.layers.{i}.{k}": v for k, v in layer.items()})
    for k, r in enumerate(args.upsampling_ratios):
        up = {"0.conv.weight": (C, C, r), "0.conv.bias": (C,), "1.dwconv.conv.weight": (C, 1, 7),
              "1.dwconv.conv.bias": (C,), "1.norm.weight": (C,), "1.norm.bias": (C,),
              "1.pwconv1.weight": (4 * C, C), "1.pwconv1.bias": (4 * C,), "1.pwconv2.weight": (C, 4 * C),
              "1.pwconv2.bias": (C,), "1.gamma": (C,)}
        shapes.update({f"upsample.{k}.{name}": v for name, v in up.items()})
    dims = [args.decoder_dim // 2 ** i for i in range(len(args.upsample_rates) + 1)]
    shapes.update({"decoder.0.conv.weight": (dims[0], C, 7), "decoder.0.conv.bias": (dims[0],)})
    for i, r in enumerate(args.upsample_rates):
        d_in, d, pre = dims[i], dims[i + 1], f"decoder.{i + 1}.block"
        shapes.update({f"{pre}.0.alpha": (d_in,), f"{pre}.0.beta": (d_in,),
                       f"{pre}.1.conv.weight": (d_in, d, 2 * r), f"{pre}.1.conv.bias": (d,)})
        for u in (2, 3, 4):
            shapes.update({f"{pre}.{u}.{act}.{p}": (d,) for act in ("act1", "act2") for p in ("alpha", "beta")})
            shapes.update({f"{pre}.{u}.conv1.conv.weight": (d, d, 7), f"{pre}.{u}.conv1.conv.bias": (d,),
                           f"{pre}.{u}.conv2.conv.weight": (d, d, 1), f"{pre}.{u}.conv2.conv.bias": (d,)})
    n = len(args.upsample_rates)
    shapes.update({f"decoder.{n + 1}.alpha": (dims[-1],), f"decoder.{n + 1}.beta": (dims[-1],),
                   f"decoder.{n + 2}.conv.weight": (1, dims[-1], 7), f"decoder.{n + 2}.conv.bias": (1,)})
    return shapes


def our_name(key: str) -> tuple[str, int]:
    """Our parameter name for a checkpoint key (without the prefix), and its rank among fused parts."""
    if key == "code_embedding.weight":
        return "embedding.weight", 0
    if not key.startswith("pre_transformer."):
        return key, 0
    key = key[len("pre_transformer."):]
    layer = re.match(r"layers\.(\d+)\.(.*)", key)
    generic = f"layers.{{i}}.{layer.group(2)}" if layer else key
    i = layer.group(1) if layer else None
    if generic in TABLE:
        return TABLE[generic].format(i=i), ORDER.index(generic)
    stem, p = generic.rsplit(".", 1)
    return TABLE[stem + ".{p}"].format(i=i, p=p), ORDER.index(stem + ".{p}")


def load_code2wav_weights(checkpoint: Checkpoint, prefix: str, args: Code2WavArgs, dtype: torch.dtype,
                          device: str = "cpu") -> dict[str, torch.Tensor]:
    """Our state dict, read from `prefix` only (missing, extra or mis-shaped tensors fail with both shapes)."""
    import torch

    from ..common.linear import to_in_out

    tensors = checkpoint.load(prefix, checkpoint_shapes(args), dtype=dtype, device=device)
    grouped: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for key, tensor in tensors.items():
        name, rank = our_name(key)
        grouped.setdefault(name, []).append((rank, tensor))
    state = {}
    for name, parts in grouped.items():
        tensor = torch.cat([t for _, t in sorted(parts, key=lambda rt: rt[0])])
        matrix = name.startswith("layers.") and name.endswith(".weight") and tensor.dim() == 2
        state[name] = to_in_out(tensor) if matrix else tensor
    return state
