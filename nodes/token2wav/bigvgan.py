"""BigVGAN of token2wav (reference qwen2.5-omni.md section 7.5): natural-log mel [B, M, N] -> waveform [B, hop N]
in [-1, 1]. The mel is first turned to dB and normalised; each upsampling stage's output is the mean of its AMP
blocks; activations are SnakeBeta, anti-aliased (x2 up, activate, x2 down, with one Kaiser-windowed sinc
filter computed at init: `init_buffers`); the output is clamped (no tanh).

Shapes: B batch, C channels, L samples at the current rate.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .args import BigVGANArgs

FILTER_TAPS = 12
MIN_DB = -115.0


@functools.cache
def kaiser_sinc(cutoff: float = 0.25, half_width: float = 0.3, taps: int = FILTER_TAPS) -> torch.Tensor:
    """[taps] float32 on the CPU (whatever the default device): a Kaiser-windowed sinc low-pass (even length,
    taps at half-integer times), sum 1. One tensor, shared by every activation (never written)."""
    half = taps // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    else:
        beta = 0.0
    window = torch.kaiser_window(taps, periodic=False, beta=beta, dtype=torch.float32, device="cpu")
    times = torch.arange(-half, half, device="cpu") + 0.5
    taps_ = 2 * cutoff * window * torch.sinc(2 * cutoff * times)
    return taps_ / taps_.sum()


def normalise_mel(mel: torch.Tensor) -> torch.Tensor:
    """Natural-log mel -> dB - 20, mapped from [-115, 0] to [-1, 1] and clamped."""
    floor = torch.exp(torch.tensor(MIN_DB / 20 * math.log(10), dtype=mel.dtype, device=mel.device))
    db = 20 * torch.log10(torch.clamp(torch.exp(mel), min=floor)) - 20
    return torch.clamp(2 * (db - MIN_DB) / -MIN_DB - 1, -1, 1)


class SnakeBeta(nn.Module):
    """x + sin^2(x e^alpha) / (e^beta + 1e-9), per channel (alpha, beta stored as logs)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha.exp()[:, None], self.beta.exp()[:, None]
        return x + torch.sin(x * alpha).pow(2) / (beta + 1e-9)


class AntiAliasedSnake(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.register_buffer("filter", kaiser_sinc(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C, taps = x.shape[1], FILTER_TAPS
        w = self.filter.to(x.dtype).expand(C, 1, -1)
        pad = taps // 2 - 1  # up x2: replicate-pad, transposed conv, crop
        up = 2 * F.conv_transpose1d(F.pad(x, (pad, pad), mode="replicate"), w, stride=2, groups=C)
        crop = pad * 2 + (taps - 2) // 2
        up = self.act(up[..., crop:-crop])
        return F.conv1d(F.pad(up, (taps // 2 - 1, taps // 2), mode="replicate"), w, stride=2, groups=C)


class AMPBlock(nn.Module):
    """x + conv2(act(conv1(act(x)))) per dilation, convs "same"-padded."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        conv = lambda d: nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel - 1) * d // 2)  # noqa: E731
        self.convs1 = nn.ModuleList(conv(d) for d in dilations)
        self.convs2 = nn.ModuleList(conv(1) for _ in dilations)
        self.activations = nn.ModuleList(AntiAliasedSnake(channels) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2)):
            x = x + c2(self.activations[2 * i + 1](c1(self.activations[2 * i](x))))
        return x


class BigVGAN(nn.Module):
    def __init__(self, a: BigVGANArgs):
        super().__init__()
        self.args = a
        self.conv_pre = nn.Conv1d(a.mel_dim, a.channels, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ModuleList([nn.ConvTranspose1d(a.channels >> i, a.channels >> (i + 1), k, r, padding=(k - r) // 2)])
            for i, (r, k) in enumerate(zip(a.upsample_rates, a.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList(AMPBlock(a.channels >> (i + 1), k, d) for i in range(len(a.upsample_rates))
                                       for k, d in zip(a.resblock_kernel_sizes, a.resblock_dilations))
        out = a.channels >> len(a.upsample_rates)
        self.activation_post = AntiAliasedSnake(out)
        self.conv_post = nn.Conv1d(out, 1, 7, padding=3, bias=False)

    def init_buffers(self, device: str) -> None:
        for module in self.modules():
            if isinstance(module, AntiAliasedSnake):
                module.filter = kaiser_sinc().to(device)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, M, N] natural-log -> [B, hop N]."""
        x, n = self.conv_pre(normalise_mel(mel)), len(self.args.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up[0](x)
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n
        return torch.clamp(self.conv_post(self.activation_post(x)), -1, 1)[:, 0]
