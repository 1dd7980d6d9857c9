"""The Qwen2.5-Omni audio encoder (Whisper-large-v3 style): per-chunk convs, attention per chunk, pooling per clip.

Per clip, the valid mel frames are cut into chunks of 2 * n_window frames (the last one shorter); each chunk goes
through conv1 (stride 1) and conv2 (stride 2) and gets sinusoidal positions restarting at 0. The tokens of all
chunks are packed and go through pre-LN encoder layers, each chunk attending to itself only; then each clip's
tokens are averaged in pairs (a trailing odd token dropped), and ln_post -> proj maps them to the Thinker's width.

Shape glossary: M mel bins, L frames of a clip, N chunks, C frames per chunk, T tokens per chunk after conv2,
n tokens (packed), D model width, H heads, K head dim, O output width.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.segments import SegmentGroup, segment_attention, segment_groups
from ..common.sinusoids import sinusoids


@dataclass(frozen=True)
class AudioEncoderArgs:
    # Defaults are those of Qwen2_5OmniAudioEncoderConfig (used for keys a config.json leaves out).
    num_mel_bins: int = 128
    d_model: int = 1280
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    output_dim: int = 3584
    n_window: int = 100           # a chunk is 2 * n_window mel frames
    max_source_positions: int = 1500
    activation_function: str = "gelu"

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> AudioEncoderArgs:
        """From config.json (thinker_config.audio_config), a thinker config (audio_config) or the audio config."""
        if "thinker_config" in config:
            config = config["thinker_config"]
        if "audio_config" in config:
            config = config["audio_config"] or {}
        args = cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})
        if args.d_model % args.encoder_attention_heads or args.d_model % 2:
            raise ValueError(f"d_model {args.d_model} must be even and a multiple of encoder_attention_heads "
                             f"{args.encoder_attention_heads}")
        if not 1 <= args.n_window <= args.max_source_positions:
            raise ValueError(f"n_window {args.n_window} must be between 1 and max_source_positions "
                             f"{args.max_source_positions} (a chunk's {args.n_window} tokens take positions "
                             f"from the table)")
        if args.activation_function != "gelu":
            raise ValueError(f"activation_function '{args.activation_function}' is not supported (only 'gelu')")
        return args


def conv_out_len(frames: int) -> int:
    """Tokens after conv2 (kernel 3, stride 2, padding 1) for a chunk or clip of `frames` frames."""
    return (frames - 1) // 2 + 1


def chunk_lengths(frames: int, chunk: int) -> list[int]:
    """A clip's frames cut into chunks of `chunk` frames, the last one shorter."""
    return [min(chunk, frames - start) for start in range(0, frames, chunk)]


def audio_tokens(frames: int) -> int:
    """Tokens the encoder makes from a clip of `frames` valid mel frames: 25 per second, 0 for 1-2 frames."""
    return conv_out_len(frames) // 2


class EncoderLayer(nn.Module):
    """Pre-LN block: x + out(attention(norm(x))), then x + fc2(gelu(fc1(norm(x)))). k has no bias."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.mlp_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x: torch.Tensor, chunks: Sequence[SegmentGroup]) -> torch.Tensor:
        n, D = x.shape
        y = self.attn_norm(x)
        q, k, v = (proj(y).view(n, self.heads, -1) for proj in (self.q, self.k, self.v))  # each [n, H, K]
        x = x + self.out(segment_attention(q, k, v, chunks).reshape(n, D))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))


class AudioEncoder(nn.Module):
    def __init__(self, args: AudioEncoderArgs):
        super().__init__()
        self.args = args
        d = args.d_model
        self.conv1 = nn.Conv1d(args.num_mel_bins, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.layers = nn.ModuleList(EncoderLayer(d, args.encoder_attention_heads, args.encoder_ffn_dim)
                                    for _ in range(args.encoder_layers))
        self.ln_post = nn.LayerNorm(d)
        self.proj = nn.Linear(d, args.output_dim)
        self.register_buffer("positions", sinusoids(args.max_source_positions, d), persistent=False)

    def init_buffers(self, device: torch.device | str) -> None:
        """Recompute the non-checkpoint buffers (after building on the meta device)."""
        self.positions = sinusoids(self.args.max_source_positions, self.args.d_model).to(device)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
        """Valid frames per clip ([M, L_i] each) -> ([sum of tokens, O] packed in clip order, tokens per clip)."""
        args = self.args
        dtype, device = self.proj.weight.dtype, self.proj.weight.device
        per_clip = [chunk_lengths(f.shape[-1], 2 * args.n_window) for f in features]
        chunk_lens = [c for clip in per_clip for c in clip]
        clip_tokens = [audio_tokens(f.shape[-1]) for f in features]
        if not chunk_lens:
            return torch.zeros(0, args.output_dim, dtype=dtype, device=device), clip_tokens

        # 1-3. Chunks zero-padded to the longest -> conv1 (padded steps zeroed) -> conv2 -> per-chunk positions.
        frames = torch.cat([f.to(device, dtype) for f in features], dim=1).T                # [sum L, M]
        chunks = nn.utils.rnn.pad_sequence(frames.split(chunk_lens), batch_first=True)      # [N, C, M]
        lens = torch.tensor(chunk_lens, device=device)
        valid = torch.arange(chunks.shape[1], device=device) < lens[:, None]                # [N, C]
        x = F.gelu(self.conv1(chunks.transpose(1, 2))) * valid[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)                                            # [N, T, D]
        T = x.shape[1]
        x = x + self.positions[:T].to(dtype)

        # 4. Keep each chunk's real tokens: packed [n, D] in clip order; each chunk attends within itself.
        chunk_tokens = [conv_out_len(c) for c in chunk_lens]
        x = x[torch.arange(T, device=device) < torch.tensor(chunk_tokens, device=device)[:, None]]
        groups = segment_groups(chunk_tokens, device)
        for layer in self.layers:
            x = layer(x, groups)

        # 5. Per clip, the mean of token pairs (2i, 2i + 1), a trailing odd token dropped; then the head.
        starts = torch.tensor([0] + [conv_out_len(f.shape[-1]) for f in features[:-1]]).cumsum(0)
        pairs = torch.cat([s + 2 * torch.arange(n) for s, n in zip(starts.tolist(), clip_tokens)]).to(device)
        x = (x[pairs] + x[pairs + 1]) / 2
        return self.proj(self.ln_post(x)), clip_tokens
