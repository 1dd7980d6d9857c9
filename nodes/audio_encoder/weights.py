"""The audio encoder's key table (under `thinker.audio_tower.`) and its loader; q/k/v are stacked into `qkv`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.key_table import SMALL, KeyTable, build_on_meta, fan_in_init

from .model import AudioEncoderArgs

if TYPE_CHECKING:
    import torch

    from .model import AudioEncoder

PREFIX = "thinker.audio_tower."
QKV = ("q_proj", "k_proj", "v_proj")


def key_table(config: dict[str, Any], prefix: str = PREFIX) -> KeyTable:
    """Every tensor of the encoder, from the full config.json dict (or its thinker_config / audio_config)."""
    a = AudioEncoderArgs.from_hf_config(config)
    ch, d, ffn = a.downsample_hidden_size, a.d_model, a.encoder_ffn_dim
    table = KeyTable(prefix)
    for i, cin in enumerate((1, ch, ch), start=1):
        table.add(f"conv2d{i}.weight", (ch, cin, 3, 3), fan_in_init(cin * 9), f"conv{i}.weight")
        table.add(f"conv2d{i}.bias", (ch,), SMALL, f"conv{i}.bias")
    table.linear("conv_out", d, ch * a.conv_freq)
    for i in range(a.encoder_layers):
        p = f"layers.{i}."
        for name in QKV:
            table.linear(f"{p}self_attn.{name}", d, d, bias=True, ours=f"{p}{name}")
        table.linear(f"{p}self_attn.out_proj", d, d, bias=True, ours=f"{p}out")
        table.norm(f"{p}self_attn_layer_norm", d, bias=True, ours=f"{p}attn_norm")
        table.linear(f"{p}fc1", ffn, d, bias=True)
        table.linear(f"{p}fc2", d, ffn, bias=True)
        table.norm(f"{p}final_layer_norm", d, bias=True, ours=f"{p}mlp_norm")
    table.norm("ln_post", d, bias=True)
    table.linear("proj1", d, d, bias=True)
    table.linear("proj2", a.output_dim, d, bias=True)
    return table


def load_audio_encoder(checkpoint: Any, prefix: str = PREFIX, dtype: torch.dtype | None = None,
                       device: str = "cpu") -> AudioEncoder:
    """The encoder in eval mode with the checkpoint's weights (only the shards holding `prefix`)."""
    import torch

    from .model import AudioEncoder

    args = AudioEncoderArgs.from_hf_config(checkpoint.config)
    state = key_table(checkpoint.config, prefix).load(checkpoint, dtype=dtype, device=device)
    for i in range(args.encoder_layers):
        for p in ("weight", "bias"):
            state[f"layers.{i}.qkv.{p}"] = torch.cat([state.pop(f"layers.{i}.{name}.{p}") for name in QKV])
    return build_on_meta(AudioEncoder, args, state, device)
