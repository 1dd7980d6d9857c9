"""The audio encoder's key table (on-disk `thinker.audio_tower.`) and its loader."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.key_table import EMBED, SMALL, KeyTable, build_on_meta, fan_in_init
from .model import AudioEncoder, AudioEncoderArgs

if TYPE_CHECKING:
    import torch

PREFIX = "thinker.audio_tower."


def key_table(config: dict[str, Any], prefix: str = PREFIX) -> KeyTable:
    """Every tensor under `prefix`, from the full config.json dict (thinker_config.audio_config)."""
    a = AudioEncoderArgs.from_hf_config(config)
    d, M = a.d_model, a.num_mel_bins
    table = KeyTable(prefix)
    table.add("conv1.weight", (d, M, 3), fan_in_init(3 * M))
    table.add("conv1.bias", (d,), SMALL)
    table.add("conv2.weight", (d, d, 3), fan_in_init(3 * d))
    table.add("conv2.bias", (d,), SMALL)
    for i in range(a.encoder_layers):
        src, ours = f"layers.{i}.", f"layers.{i}."
        table.norm(src + "self_attn_layer_norm", d, bias=True, ours=ours + "attn_norm")
        table.linear(src + "self_attn.q_proj", d, d, bias=True, ours=ours + "q")
        table.linear(src + "self_attn.k_proj", d, d, ours=ours + "k")
        table.linear(src + "self_attn.v_proj", d, d, bias=True, ours=ours + "v")
        table.linear(src + "self_attn.out_proj", d, d, bias=True, ours=ours + "out")
        table.norm(src + "final_layer_norm", d, bias=True, ours=ours + "mlp_norm")
        table.linear(src + "fc1", a.encoder_ffn_dim, d, bias=True)
        table.linear(src + "fc2", d, a.encoder_ffn_dim, bias=True)
    table.norm("ln_post", d, bias=True)
    table.linear("proj", a.output_dim, d, bias=True)
    table.add("audio_bos_eos_token.weight", (2, a.output_dim), EMBED, optional=True)  # unused by the model
    return table


def load_audio_encoder(checkpoint: Any, dtype: torch.dtype | None = None, device: str = "cpu",
                       prefix: str = PREFIX) -> AudioEncoder:
    """The encoder built from config.json, its weights read from `prefix` only (shapes checked)."""
    table = key_table(checkpoint.config, prefix)
    state = table.load(checkpoint, dtype=dtype, device=device)
    state.pop("audio_bos_eos_token.weight", None)
    return build_on_meta(AudioEncoder, AudioEncoderArgs.from_hf_config(checkpoint.config), state, device)
