"""Checkpoint keys of token2wav: the DiT under `code2wav_dit_model.`, BigVGAN under `code2wav_bigvgan_model.`
(below the node's prefix, default `token2wav.`). Our modules keep the checkpoint's names, so each table lists
the parameters of the model built on the meta device, with their on-disk shapes (a ConvTranspose weight is
[in, out, k]) and a random init for the tiny-checkpoint writer.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...runtime.checkpoint_meta import empty_model
from ..common.key_table import EMBED, SMALL, KeyTable, build_on_meta, fan_in_init

from .args import BigVGANArgs, DiTArgs
from .bigvgan import BigVGAN
from .dit import DiT

# Random vocoders that sound like something: SnakeBeta's sin² term (always >= 0) scaled by e^-2 (its log magnitude
# 2), so random layers do not pile it up into an offset, and BigVGAN's last conv at 0.3 of the usual scale (with
# 0 and 1, the tiny25 waveform sat at the -1 clamp throughout; now an RMS near 0.25, unclipped).
LOG_SNAKE_BETA = ("normal", 2.0, 0.02)
VOCODER_OUT_GAIN = 0.3
DIT = "code2wav_dit_model."
BIGVGAN = "code2wav_bigvgan_model."


def table_of(model_cls: type[nn.Module], args: Any, prefix: str) -> KeyTable:
    model = empty_model(model_cls, args)
    table = KeyTable(prefix)
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        owner, leaf = modules[name.rpartition(".")[0]], name.rpartition(".")[2]
        if isinstance(owner, nn.Embedding):
            init = EMBED
        elif leaf == "weight" and p.dim() > 1:
            fan_in = p.shape[0] * p.shape[2] if isinstance(owner, nn.ConvTranspose1d) else p[0].numel()
            init = fan_in_init(fan_in, VOCODER_OUT_GAIN if name == "conv_post.weight" else 1.0)
        elif leaf == "beta":
            init = LOG_SNAKE_BETA
        else:
            init = SMALL  # biases, SnakeBeta's log alpha
        table.add(name, tuple(p.shape), init)
    return table


def dit_table(args: DiTArgs, root: str = "token2wav.") -> KeyTable:
    return table_of(DiT, args, root + DIT)


def bigvgan_table(args: BigVGANArgs, root: str = "token2wav.") -> KeyTable:
    return table_of(BigVGAN, args, root + BIGVGAN)


def load_token2wav(checkpoint: Any, root: str = "token2wav.", device: str = "cpu") -> tuple[DiT, BigVGAN]:
    """The DiT and BigVGAN in eval mode, float32 (as the reference always runs token2wav)."""
    dit_args, vocoder_args = DiTArgs.from_hf_config(checkpoint.config), BigVGANArgs.from_hf_config(checkpoint.config)
    dit_state = dit_table(dit_args, root).load(checkpoint, dtype=torch.float32, device=device)
    vocoder_state = bigvgan_table(vocoder_args, root).load(checkpoint, dtype=torch.float32, device=device)
    return build_on_meta(DiT, dit_args, dit_state, device), build_on_meta(BigVGAN, vocoder_args, vocoder_state, device)
