"""ECAPA-TDNN speaker encoder of the DiT's input (reference qwen2.5-omni.md section 7.2): the reference mel
[B, T, mel] -> a speaker vector [B, enc_dim]. Every conv pads "same" with reflection and has a bias.

Shapes: B batch, C channels, T frames.
"""
from __future__ import annotations

import torch
from torch import nn

from .args import DiTArgs


def same_conv(c_in: int, c_out: int, kernel: int = 1, dilation: int = 1) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding="same", padding_mode="reflect")


class TDNN(nn.Module):
    """relu(conv(x))."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = same_conv(c_in, c_out, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class Res2Net(nn.Module):
    """Channels split in `scale` parts: part 0 passes, part i >= 1 goes through its TDNN after adding part i-1's
    output (from part 2 on)."""

    def __init__(self, channels: int, scale: int, kernel: int, dilation: int):
        super().__init__()
        self.scale = scale
        self.blocks = nn.ModuleList(TDNN(channels // scale, channels // scale, kernel, dilation)
                                    for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(x.chunk(self.scale, dim=1))
        out = [parts[0]]
        for i, block in enumerate(self.blocks, start=1):
            out.append(block(parts[i] if i == 1 else parts[i] + out[-1]))
        return torch.cat(out, dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv1 = same_conv(channels, hidden)
        self.conv2 = same_conv(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv2(torch.relu(self.conv1(x.mean(dim=2, keepdim=True)))))


class SERes2NetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, scale: int, se: int, kernel: int, dilation: int):
        super().__init__()
        self.tdnn1 = TDNN(c_in, c_out)
        self.res2net_block = Res2Net(c_out, scale, kernel, dilation)
        self.tdnn2 = TDNN(c_out, c_out)
        self.se_block = SqueezeExcite(c_out, se)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se_block(self.tdnn2(self.res2net_block(self.tdnn1(x))))


def weighted_stats(x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, C, T], weights [B, 1 or C, T] summing to 1 over T -> mean, std [B, C] (variance floored at 1e-12)."""
    mean = (weights * x).sum(2)
    std = (weights * (x - mean[..., None]).pow(2)).sum(2).clamp(1e-12).sqrt()
    return mean, std


class AttentiveStatsPooling(nn.Module):
    def __init__(self, channels: int, attention: int):
        super().__init__()
        self.tdnn = TDNN(3 * channels, attention)
        self.conv = same_conv(attention, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, T] -> [B, 2C] (attention-weighted mean and std)."""
        T = x.shape[-1]
        mean, std = weighted_stats(x, torch.full_like(x[:, :1], 1.0 / T))
        context = torch.cat([x, mean[..., None].expand_as(x), std[..., None].expand_as(x)], dim=1)
        attention = self.conv(torch.tanh(self.tdnn(context))).softmax(dim=2)
        return torch.cat(weighted_stats(x, attention), dim=1)


class ECAPA(nn.Module):
    def __init__(self, a: DiTArgs):
        super().__init__()
        ch, ks, ds = a.enc_channels, a.enc_kernel_sizes, a.enc_dilations
        self.blocks = nn.ModuleList([TDNN(a.mel_dim, ch[0], ks[0], ds[0])] + [
            SERes2NetBlock(ch[i - 1], ch[i], a.enc_res2net_scale, a.enc_se_channels, ks[i], ds[i])
            for i in range(1, len(ch) - 1)])
        self.mfa = TDNN(ch[-1], ch[-1], ks[-1], ds[-1])
        self.asp = AttentiveStatsPooling(ch[-1], a.enc_attention_channels)
        self.fc = same_conv(2 * ch[-1], a.enc_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, T, mel_dim] -> [B, enc_dim]."""
        x, outs = mel.transpose(1, 2), []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        x = self.asp(self.mfa(torch.cat(outs[1:], dim=1)))
        return self.fc(x[..., None])[..., 0]
