"""The shapes of Qwen2.5-Omni's token2wav (a DiT flow-matching mel generator, then BigVGAN), from config.json's
token2wav_config (reference qwen2.5-omni.md sections 7.1 and 7.5)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DiTArgs:
    dim: int
    n_layers: int
    n_heads: int
    head_dim: int
    ff_mult: int
    emb_dim: int  # codec embedding width
    repeats: int  # mel frames per code
    num_embeds: int  # the codec table has num_embeds + 1 rows
    mel_dim: int
    block_size: int  # mel frames per attention block
    look_ahead: tuple[int, ...]  # per layer: blocks ahead a query sees (0 or 1)
    look_back: tuple[int, ...]  # per layer: blocks back a query sees
    rope_theta: float
    max_positions: int  # the longest mel the model takes
    enc_emb_dim: int  # the speaker's `cond` width
    enc_dim: int  # the ECAPA output width
    enc_channels: tuple[int, ...]
    enc_kernel_sizes: tuple[int, ...]
    enc_dilations: tuple[int, ...]
    enc_attention_channels: int
    enc_res2net_scale: int
    enc_se_channels: int

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> DiTArgs:
        """From config.json (full, token2wav_config or its dit_config)."""
        c = config.get("token2wav_config", config)
        c = c.get("dit_config", c)
        rope = c.get("rope_parameters") or {}
        n_layers = c["num_hidden_layers"]
        ahead, back = set(c.get("look_ahead_layers", [10])), set(c.get("look_backward_layers", [0, 20]))
        channels = tuple(c["enc_channels"])
        if channels[-1] != sum(channels[1:-1]):
            raise ValueError(f"enc_channels {list(channels)}: the last must be the sum of the middle ones")
        return cls(dim=c["hidden_size"], n_layers=n_layers, n_heads=c["num_attention_heads"],
                   head_dim=c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"],
                   ff_mult=c.get("ff_mult", 2), emb_dim=c["emb_dim"], repeats=c.get("repeats", 2),
                   num_embeds=c["num_embeds"], mel_dim=c["mel_dim"], block_size=c["block_size"],
                   look_ahead=tuple(int(i in ahead) for i in range(n_layers)),
                   look_back=tuple(int(i in back) for i in range(n_layers)),
                   rope_theta=float(rope.get("rope_theta", c.get("rope_theta", 10000.0))),
                   max_positions=c.get("max_position_embeddings", 32768),
                   enc_emb_dim=c["enc_emb_dim"], enc_dim=c["enc_dim"], enc_channels=channels,
                   enc_kernel_sizes=tuple(c["enc_kernel_sizes"]), enc_dilations=tuple(c["enc_dilations"]),
                   enc_attention_channels=c["enc_attention_channels"], enc_res2net_scale=c["enc_res2net_scale"],
                   enc_se_channels=c["enc_se_channels"])


@dataclass(frozen=True)
class BigVGANArgs:
    mel_dim: int
    channels: int  # upsample_initial_channel; stage i has channels / 2^(i+1)
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilations: tuple[tuple[int, ...], ...]

    @property
    def hop(self) -> int:
        """Waveform samples per mel frame."""
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> BigVGANArgs:
        """From config.json (full, token2wav_config or its bigvgan_config)."""
        c = config.get("token2wav_config", config)
        c = c.get("bigvgan_config", c)
        rates = tuple(c["upsample_rates"])
        if c["upsample_initial_channel"] < 2 ** len(rates):
            raise ValueError(f"upsample_initial_channel {c['upsample_initial_channel']} is below 2^{len(rates)} "
                             f"(one halving per upsampling stage)")
        return cls(mel_dim=c["mel_dim"], channels=c["upsample_initial_channel"], upsample_rates=rates,
                   upsample_kernel_sizes=tuple(c["upsample_kernel_sizes"]),
                   resblock_kernel_sizes=tuple(c["resblock_kernel_sizes"]),
                   resblock_dilations=tuple(tuple(d) for d in c["resblock_dilation_sizes"]))
