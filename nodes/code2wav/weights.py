"""Code2Wav's key table (under `code2wav.`) and its loader.

The pre-transformer is renamed and fused at load (q/k/v -> `attn.wqkv`, gate/up -> `mlp.w_gate_up`, matrices
stored [in, out]); the upsampler and decoder keep the checkpoint's names (`upsample.*`, `decoder.*`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.key_table import EMBED, SMALL, Init, KeyTable, build_on_meta, fan_in_init

from .model import Code2WavArgs

if TYPE_CHECKING:
    import torch

    from .model import Code2Wav

PREFIX = "code2wav."
SCALE: Init = ("normal", 0.3, 0.05)  # layer scales and ConvNeXt gamma
SNAKE: Init = ("normal", 0.0, 0.1)   # log-space alpha / beta: exp(.) ~ 1
FUSED = {"attn.wqkv": ("q_proj", "k_proj", "v_proj"), "mlp.w_gate_up": ("gate_proj", "up_proj")}


def key_table(config: dict[str, Any], prefix: str = PREFIX) -> KeyTable:
    """Every tensor of the vocoder, from the full config.json dict (or its code2wav_config)."""
    a = Code2WavArgs.from_hf_config(config)
    C, F, bias = a.hidden_size, a.intermediate_size, a.attention_bias
    q, kv = a.num_attention_heads * a.head_dim, a.num_key_value_heads * a.head_dim
    table = KeyTable(prefix)
    table.add("code_embedding.weight", (a.num_quantizers * a.codebook_size, C), EMBED, "embedding.weight")
    for i in range(a.num_hidden_layers):
        key, ours = f"pre_transformer.layers.{i}.", f"layers.{i}."
        for name, out_f in (("q_proj", q), ("k_proj", kv), ("v_proj", kv)):
            table.linear(f"{key}self_attn.{name}", out_f, C, bias=bias, ours=ours + name)
        table.linear(f"{key}self_attn.o_proj", C, q, bias=bias, ours=ours + "attn.wo")
        for name, out_f, in_f in (("gate_proj", F, C), ("up_proj", F, C)):
            table.linear(f"{key}mlp.{name}", out_f, in_f, ours=ours + name)
        table.linear(f"{key}mlp.down_proj", C, F, ours=ours + "mlp.w_down")
        table.norm(f"{key}input_layernorm", C, ours=ours + "attn_norm")
        table.norm(f"{key}post_attention_layernorm", C, ours=ours + "mlp_norm")
        table.add(f"{key}self_attn_layer_scale.scale", (C,), SCALE, ours + "attn_scale")
        table.add(f"{key}mlp_layer_scale.scale", (C,), SCALE, ours + "mlp_scale")
    table.norm("pre_transformer.norm", C, ours="norm")
    for k, ratio in enumerate(a.upsampling_ratios):
        p = f"upsample.{k}."
        table.add(p + "0.conv.weight", (C, C, ratio), fan_in_init(C))  # ConvTranspose1d [in, out, k], stride k
        table.add(p + "0.conv.bias", (C,), SMALL)
        table.add(p + "1.dwconv.conv.weight", (C, 1, 7), fan_in_init(7))
        table.add(p + "1.dwconv.conv.bias", (C,), SMALL)
        table.norm(p + "1.norm", C, bias=True)
        table.linear(p + "1.pwconv1", 4 * C, C, bias=True)
        table.linear(p + "1.pwconv2", C, 4 * C, bias=True)
        table.add(p + "1.gamma", (C,), SCALE)
    dim = a.decoder_dim
    _conv(table, "decoder.0.conv", dim, C, 7)
    for i, rate in enumerate(a.upsample_rates, start=1):
        p, out = f"decoder.{i}.block.", dim // 2
        _snake(table, p + "0", dim)
        table.add(p + "1.conv.weight", (dim, out, 2 * rate), fan_in_init(dim * 2))  # 2 taps per output sample
        table.add(p + "1.conv.bias", (out,), SMALL)
        for u in (2, 3, 4):
            _snake(table, f"{p}{u}.act1", out)
            _snake(table, f"{p}{u}.act2", out)
            _conv(table, f"{p}{u}.conv1.conv", out, out, 7)
            _conv(table, f"{p}{u}.conv2.conv", out, out, 1, gain=0.3)  # keep residual growth small
        dim = out
    n = len(a.upsample_rates) + 1
    _snake(table, f"decoder.{n}", dim)
    table.add(f"decoder.{n + 1}.conv.weight", (1, dim, 7), fan_in_init(dim * 7, gain=0.07))
    table.add(f"decoder.{n + 1}.conv.bias", (1,), ("normal", 0.0, 0.0))
    return table


def _conv(table: KeyTable, name: str, out_c: int, in_c: int, k: int, gain: float = 1.0) -> None:
    table.add(f"{name}.weight", (out_c, in_c, k), fan_in_init(in_c * k, gain))
    table.add(f"{name}.bias", (out_c,), SMALL)


def _snake(table: KeyTable, name: str, dim: int) -> None:
    table.add(f"{name}.alpha", (dim,), SNAKE)
    table.add(f"{name}.beta", (dim,), SNAKE)


def load_code2wav(checkpoint: Any, prefix: str = PREFIX, dtype: torch.dtype | None = None,
                  device: str = "cpu") -> Code2Wav:
    """Code2Wav in eval mode with the checkpoint's weights (only the shards holding `prefix`); the
    pre-transformer is fused and its matrices stored [in, out]."""
    import torch

    from ..common.linear import to_in_out

    from .model import Code2Wav

    args = Code2WavArgs.from_hf_config(checkpoint.config)
    state = key_table(checkpoint.config, prefix).load(checkpoint, dtype=dtype, device=device)
    for i in range(args.num_hidden_layers):
        p = f"layers.{i}."
        for fused, parts in FUSED.items():
            for kind in ("weight", "bias"):
                if f"{p}{parts[0]}.{kind}" in state:
                    state[f"{p}{fused}.{kind}"] = torch.cat([state.pop(f"{p}{part}.{kind}") for part in parts])
        for name in ("attn.wqkv", "attn.wo", "mlp.w_gate_up", "mlp.w_down"):
            state[f"{p}{name}.weight"] = to_in_out(state[f"{p}{name}.weight"])
    return build_on_meta(Code2Wav, args, state, device)
