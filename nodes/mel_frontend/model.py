"""Whisper-style log-mel features, batched over clips (the math is the `omnigraph.kernels.mel` kernel).

Matches the Hugging Face WhisperFeatureExtractor as the Qwen3-Omni processor calls it (pad to the longest clip,
no truncation): periodic Hann STFT with centre reflect padding and the last frame dropped, power, Slaney mel
filterbank, log10 clamped at 1e-10, a dynamic-range floor of (max - 8) per padded example, then (x + 4) / 4.

Shape glossary: B clips, N samples (padded), T frames (N // hop), F frequency bins (n_fft // 2 + 1), M mel bins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ...kernels.mel import log_mel


@dataclass(frozen=True)
class MelArgs:
    n_mels: int = 128
    n_fft: int = 400
    hop: int = 160
    sample_rate: int = 16000
    max_samples: int = 4_800_000  # 300 s at 16 kHz (the processor's n_samples)
    fmin: float = 0.0
    fmax: float = 8000.0

    @classmethod
    def from_hf_config(cls, config: dict[str, Any] | None) -> MelArgs:
        """From a preprocessor_config.json dict (WhisperFeatureExtractor fields); None gives the defaults."""
        cfg = dict(config or {})
        if isinstance(cfg.get("feature_extractor"), dict):  # a processor config nesting its parts
            cfg = cfg["feature_extractor"]
        d = cls()
        sample_rate = int(cfg.get("sampling_rate", d.sample_rate))
        if "n_samples" in cfg:
            max_samples = int(cfg["n_samples"])
        elif "chunk_length" in cfg:
            max_samples = int(cfg["chunk_length"]) * sample_rate
        else:
            max_samples = d.max_samples
        return cls(n_mels=int(cfg.get("feature_size", d.n_mels)), n_fft=int(cfg.get("n_fft", d.n_fft)),
                   hop=int(cfg.get("hop_length", d.hop)), sample_rate=sample_rate, max_samples=max_samples)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz * 3.0 / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) * 27.0 / math.log(6.4)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * 200.0 / 3.0
    log_part = 1000.0 * np.exp((mel - 15.0) * math.log(6.4) / 27.0)
    return np.where(mel >= 15.0, log_part, hz)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular filters on the Slaney mel scale. Returns [F, M] float64."""
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)                     # [F]
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))  # [M + 2]
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]                      # [M] each
    rising = (fft_hz[:, None] - lower) / (centre - lower)                          # [F, M]
    falling = (upper - fft_hz[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (upper - lower))  # equal area per filter


def valid_frames(lengths: list[int], hop: int) -> list[int]:
    """Valid frames per clip of a batch padded to the longest clip (the feature extractor's mask sums).

    The mask is the sample mask taken every `hop` samples, cut to the padded length's frame count: the longest
    clip gets floor(L / hop) frames while shorter clips get ceil(L / hop).
    """
    frames = max(lengths) // hop
    return [min(-(-n // hop), frames) for n in lengths]


def prompt_rows(prompts: Sequence[Sequence[torch.Tensor]], n_fft: int, hop: int,
                device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips of several prompts as the rows of one batch, each row giving its prompt's frames alone.

    Alone, a prompt's clips are zero-padded to its longest clip (P samples) and the STFT reflects at P. Here
    every row is as long as the longest P plus n_fft // 2 and carries its own reflection at its P, so its first
    P // hop frames are those of its prompt alone. -> wav [R, N] (rows in prompt order) and P // hop per row [R].
    """
    half = n_fft // 2
    padded = [max(int(c.shape[0]) for c in clips) for clips in prompts]
    wav = torch.zeros(sum(map(len, prompts)), max(padded) + half, dtype=torch.float32, device=device)  # [R, N]
    own, row = [], 0
    for clips, p in zip(prompts, padded):
        for clip in clips:
            wav[row, : clip.shape[0]] = clip
            wav[row, p:p + half] = wav[row, p - 1 - half:p - 1].flip(0)  # the reflect padding at p, as alone
            own.append(p // hop)
            row += 1
    return wav, torch.tensor(own)


class LogMel(torch.nn.Module):
    """[B, N] waveforms (zero-padded to a common length) -> [B, M, N // hop] log-mel features."""

    def __init__(self, args: MelArgs):
        super().__init__()
        self.args = args
        self.register_buffer("window", torch.hann_window(args.n_fft, periodic=True), persistent=False)
        filters = mel_filterbank(args.n_mels, args.n_fft, args.sample_rate, args.fmin, args.fmax)
        self.register_buffer("filters", torch.from_numpy(filters).float(), persistent=False)  # [F, M]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return log_mel(wav, self.window, self.filters, self.args.hop)

    def prompts(self, prompts: Sequence[Sequence[torch.Tensor]],
                max_length: bool = False) -> list[tuple[torch.Tensor, ...]]:
        """The clips [N_i] of several prompts -> per prompt, per clip, its valid features [M, T_i], each equal to
        the prompt's features alone (one batch padded to the longest clip, as the Qwen3-Omni processor pads it).

        max_length: every clip as if zero-padded to max_samples, as the Qwen2.5-Omni processor pads it: ceil(L /
        hop) frames each. Zeros past n_fft after the clip change none of them (frames of zeros sit at the floor
        of 1e-10, under the max - 8 floor), so each clip is computed alone, padded that far."""
        hop, n_fft = self.args.hop, self.args.n_fft
        if max_length:
            ends = [-(-int(c.shape[0]) // hop) * hop + n_fft for clips in prompts for c in clips]
            clips = [c for clips in prompts for c in clips]
            rows = [[torch.nn.functional.pad(c, (0, end - c.shape[0]))] for c, end in zip(clips, ends)]
            wav, own = prompt_rows(rows, n_fft, hop, self.window.device)
        else:
            wav, own = prompt_rows(prompts, n_fft, hop, self.window.device)
        feats = log_mel(wav, self.window, self.filters, hop, own)  # [R, M, T]
        out, row = [], 0
        for clips in prompts:
            lengths = [int(c.shape[0]) for c in clips]
            frames = [-(-n // hop) for n in lengths] if max_length else valid_frames(lengths, hop)
            out.append(tuple(feats[row + i, :, :n].clone() for i, n in enumerate(frames)))  # own storage per clip
            row += len(clips)
        return out
