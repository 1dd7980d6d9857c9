"""token2wav block by block (mode `stream`): mel blocks as their codes arrive, then the waveform of every mel
frame whose vocoder context is in.

The DiT attends within blocks of `block_size` mel frames, and a few layers reach one block back or ahead, so
one DiT call computes block b from blocks b - back .. b + ahead (`reach`: the sums over layers). `MelBlocks`
decodes `chunk` blocks b .. b + chunk - 1 once the codes of block b + chunk - 1 + ahead have arrived, running
the whole ODE on the window from block b - back to that one (with the window's slice of the utterance's noise)
and keeping the chunk's blocks. A larger chunk costs less per block (each window re-solves its context blocks)
and waits longer for its first audio; the windows depend on the chunk size only, never on when codes arrive.
The ODE of the whole utterance couples every block through its 36 calls, so this is an approximation of
`mode: whole` (which equals transformers), not equal to it. `WaveStream` vocodes exactly: BigVGAN is
convolutional, so a frame's samples depend on `context` frames each side only; each call reads the held
frames plus that context and keeps the samples that are final.

Shapes: M mel bins, F mel frames, S samples.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .args import BigVGANArgs, DiTArgs
from .bigvgan import FILTER_TAPS, BigVGAN
from .dit import DiT


def reach(a: DiTArgs) -> tuple[int, int]:
    """(back, ahead): the blocks one DiT call reads around a block."""
    return sum(a.look_back), sum(a.look_ahead)


def vocoder_context(a: BigVGANArgs) -> int:
    """A bound on the mel frames each side that decide a frame's samples (convolution half-widths, summed over
    the stages at each stage's rate)."""
    act = FILTER_TAPS // 2 + 1  # an anti-aliased activation: +-3 samples up, +-3 down, at its rate
    frames, rate = 3.0, 1  # conv_pre (kernel 7)
    for r, k in zip(a.upsample_rates, a.upsample_kernel_sizes):
        frames += (k // r + 2) / rate  # the transposed conv, in its input's samples
        rate *= r
        frames += max(sum((K - 1) * d // 2 + (K - 1) // 2 + 2 * act for d in ds)
                      for K, ds in zip(a.resblock_kernel_sizes, a.resblock_dilations)) / rate
    frames += (act + 3) / rate  # activation_post, conv_post (kernel 7)
    return math.ceil(frames) + 1


Solver = Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor]  # (noise, conditioning, first) -> mel [M, n]


class MelBlocks:
    """One utterance's mel, block by block; `solver` runs the ODE of a window (window_batch.py)."""

    def __init__(self, dit: DiT, voice: tuple[torch.Tensor, ...], generator: torch.Generator, chunk: int,
                 solver: Solver):
        self.dit, self.voice, self.generator, self.chunk, self.solver = dit, voice, generator, chunk, solver
        a = dit.args
        self.block, self.repeats, self.mel_dim = a.block_size, a.repeats, a.mel_dim
        self.back, self.ahead = reach(a)
        self.codes: list[int] = []
        self.noise: list[torch.Tensor] = []  # per block [1, block, M], drawn in order on the CPU
        self.done = 0  # blocks decoded

    @property
    def frames(self) -> int:
        return self.repeats * len(self.codes)

    @torch.inference_mode()
    def ready(self, ended: bool) -> list[torch.Tensor]:
        """Every chunk that can be decoded now (all that are left once `ended`) -> their mels [M, F]."""
        out = []
        total = math.ceil(self.frames / self.block)
        while self.done < total and (ended or (self.done + self.chunk + self.ahead) * self.block <= self.frames):
            out.append(self._decode(self.done, min(self.done + self.chunk, total)))
            self.done = min(self.done + self.chunk, total)
        return out

    def _decode(self, b: int, end: int) -> torch.Tensor:
        """The mel of blocks b .. end - 1 [M, F]."""
        bs, rep = self.block, self.repeats
        first, last = max(0, b - self.back), end - 1 + self.ahead  # the window's blocks
        f0, f1 = first * bs, min((last + 1) * bs, self.frames)
        c0 = f0 // rep
        device = self.voice[0].device
        codes = torch.tensor([self.codes[c0:math.ceil(f1 / rep)]], device=device)
        conditioning = self.dit.conditioning(codes, self.voice)[:, f0 - c0 * rep:f1 - c0 * rep]
        mel = self.solver(self._noise(first, f1), conditioning, b == 0)  # [M, f1 - f0]
        return mel[:, b * bs - f0:min(end * bs, self.frames) - f0]

    def _noise(self, first: int, f1: int) -> torch.Tensor:
        """The noise of frames first * block .. f1 [1, F, M]."""
        while len(self.noise) * self.block < f1:
            self.noise.append(torch.randn((1, self.block, self.mel_dim), dtype=torch.float32,
                                          generator=self.generator))
        return torch.cat(self.noise[first:-(-f1 // self.block)], dim=1)[:, :f1 - first * self.block]


class WaveStream:
    """The waveform of a growing mel, each sample computed once its frames' context is in."""

    def __init__(self, vocoder: BigVGAN):
        self.vocoder, self.context, self.hop = vocoder, vocoder_context(vocoder.args), vocoder.args.hop
        self.held: torch.Tensor | None = None  # [M, F] frames from `offset` on
        self.offset = 0
        self.emitted = 0  # frames whose samples are out

    @torch.inference_mode()
    def take(self, mel: torch.Tensor | None, ended: bool) -> torch.Tensor:
        """Add mel [M, F] (or None) -> the samples [S] now final (all the rest once `ended`)."""
        if mel is not None:
            self.held = mel if self.held is None else torch.cat([self.held, mel], dim=1)
        if self.held is None:
            return torch.zeros(0)
        frames = self.offset + self.held.shape[1]
        end = frames if ended else frames - self.context
        if end <= self.emitted:
            return torch.zeros(0, device=self.held.device)
        start = max(self.offset, self.emitted - self.context)
        wav = self.vocoder(self.held[None, :, start - self.offset:])[0]
        samples = wav[(self.emitted - start) * self.hop:None if ended else (end - start) * self.hop]
        self.emitted = end
        keep = max(self.offset, end - self.context)
        self.held, self.offset = self.held[:, keep - self.offset:], keep
        return samples
