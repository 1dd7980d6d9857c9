"""AuT, the Qwen3-Omni audio encoder: chunked conv downsampling, windowed transformer, projection head.

Per clip, the valid mel frames are cut into chunks of 2 * n_window frames (the last may be shorter); every chunk
goes through three stride-2 convs (8x fewer frames) and gets sinusoidal positions restarting at 0. The tokens
of a clip then go through pre-LN encoder layers, attending in windows of `window` tokens (block diagonal,
never across clips: the layers run on the packed tokens and only attention pads windows, grouped by length),
and a LayerNorm -> Linear -> GELU -> Linear head maps them to the Thinker's width.

Shape glossary: M mel bins, L frames of a clip, N chunks, C frames per chunk, Q frequency after the convs,
T tokens per chunk, n tokens (packed), D model width, H heads, K head dim, O output width.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.segments import SegmentGroup, segment_attention, segment_groups

CPU_CONV_CHUNKS = 8  # chunks per conv call on CPU: 64 at once ran 2-4x slower per chunk (activations leave the cache)


@dataclass(frozen=True)
class AudioEncoderArgs:
    # Defaults are those of the Hugging Face config class (used for keys a config.json leaves out).
    num_mel_bins: int = 128
    d_model: int = 1280
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    output_dim: int = 3584
    n_window: int = 50            # a chunk is 2 * n_window mel frames
    n_window_infer: int = 800     # an attention window covers n_window_infer mel frames
    conv_chunksize: int = 500     # chunks per conv batch (memory only)
    downsample_hidden_size: int = 480
    max_source_positions: int = 1500
    activation_function: str = "gelu"
    layer_norm_eps: float = 1e-5

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> AudioEncoderArgs:
        """From config.json (thinker_config.audio_config), a thinker config (audio_config) or the audio config."""
        if "thinker_config" in config:
            config = config["thinker_config"]
        if "audio_config" in config:
            config = config["audio_config"] or {}
        args = cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})
        if args.d_model % args.encoder_attention_heads:
            raise ValueError(f"d_model {args.d_model} is not a multiple of encoder_attention_heads "
                             f"{args.encoder_attention_heads}")
        if args.n_window != 50:
            raise ValueError(f"n_window {args.n_window} is not supported: Qwen3-Omni hard-wires 13 tokens per "
                             f"100-frame chunk (n_window 50) in its placeholder count")
        if args.n_window_infer < 2 * args.n_window:
            raise ValueError(f"n_window_infer {args.n_window_infer} is shorter than one chunk "
                             f"(2 * n_window = {2 * args.n_window} frames)")
        if args.activation_function != "gelu":
            raise ValueError(f"activation_function '{args.activation_function}' is not supported (only 'gelu')")
        return args

    @property
    def conv_freq(self) -> int:
        return conv_out_len(self.num_mel_bins)


def conv_out_len(n: int) -> int:
    """Length after the three stride-2 convs (kernel 3, padding 1): ceil-halving three times."""
    for _ in range(3):
        n = (n - 1) // 2 + 1
    return n


def chunk_lengths(frames: int, chunk: int) -> list[int]:
    """A clip's frames cut into chunks of `chunk` frames, the last one shorter."""
    return [min(chunk, frames - start) for start in range(0, frames, chunk)]


def audio_tokens(frames: int, n_window: int = 50) -> int:
    """Tokens the encoder makes from a clip of `frames` valid mel frames (13 per full 100-frame chunk)."""
    return sum(conv_out_len(c) for c in chunk_lengths(frames, 2 * n_window))


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """[length, channels] table: sin of position * inv_freq in the first half, cos in the second."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv_freq = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float32))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class EncoderLayer(nn.Module):
    """Pre-LN block: x + out(attention(norm(x))), then x + fc2(gelu(fc1(norm(x))))."""

    def __init__(self, d: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)  # q, k, v projections stacked along the output
        self.out = nn.Linear(d, d)
        self.mlp_norm = nn.LayerNorm(d, eps=eps)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x: torch.Tensor, windows: Sequence[SegmentGroup]) -> torch.Tensor:
        n, D = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(n, 3, self.heads, -1).unbind(1)  # each [n, H, K]
        x = x + self.out(segment_attention(q, k, v, windows).reshape(n, D))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))


class AudioEncoder(nn.Module):
    def __init__(self, args: AudioEncoderArgs):
        super().__init__()
        self.args = args
        ch, d = args.downsample_hidden_size, args.d_model
        self.conv1 = nn.Conv2d(1, ch, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.conv_out = nn.Linear(ch * args.conv_freq, d, bias=False)
        self.layers = nn.ModuleList(EncoderLayer(d, args.encoder_attention_heads, args.encoder_ffn_dim,
                                                 args.layer_norm_eps) for _ in range(args.encoder_layers))
        self.ln_post = nn.LayerNorm(d, eps=args.layer_norm_eps)
        self.proj1 = nn.Linear(d, d)
        self.proj2 = nn.Linear(d, args.output_dim)
        self.register_buffer("positions", sinusoids(args.max_source_positions, d), persistent=False)

    def reset_buffers(self, device: torch.device | str) -> None:
        """Recompute the non-checkpoint buffers (after building on the meta device)."""
        self.positions = sinusoids(self.args.max_source_positions, self.args.d_model).to(device)

    def downsample(self, chunks: torch.Tensor) -> torch.Tensor:
        """[N, 1, M, C] mel chunks -> [N, T, D] (conv stack, channel-major flatten, conv_out)."""
        x = F.gelu(self.conv1(chunks))
        x = F.gelu(self.conv2(x))
        x = F.gelu(self.conv3(x))                            # [N, ch, Q, T]
        N, ch, Q, T = x.shape
        return self.conv_out(x.permute(0, 3, 1, 2).reshape(N, T, ch * Q))

    def forward(self, features: list[torch.Tensor],
                prompts: Sequence[int] | None = None) -> tuple[torch.Tensor, list[int]]:
        """Valid frames per clip ([M, L_i] each) -> ([sum of tokens, O] packed in clip order, tokens per clip).

        `prompts`: clips per prompt, in order (default: all one prompt). A prompt's chunks are padded to its
        longest chunk, as when it is encoded alone: the padding reaches the last tokens of a shorter chunk
        through the convs' biases, so a prompt shorter than one chunk must not be padded to another's width.
        """
        args = self.args
        C = 2 * args.n_window
        dtype, device = self.proj2.weight.dtype, self.proj2.weight.device
        per_clip = [chunk_lengths(f.shape[-1], C) for f in features]
        chunk_lens = [c for clip in per_clip for c in clip]
        chunk_tokens = [conv_out_len(c) for c in chunk_lens]
        clip_tokens = [sum(conv_out_len(c) for c in clip) for clip in per_clip]
        if not chunk_lens:
            return torch.zeros(0, args.output_dim, dtype=dtype, device=device), clip_tokens
        clip_widths = []  # each clip's padded chunk width: its prompt's longest chunk
        for end, count in zip(itertools.accumulate(prompts or [len(features)]), prompts or [len(features)]):
            clips = per_clip[end - count:end]
            clip_widths += [max((c for clip in clips for c in clip), default=0)] * count

        # 1-4. Chunks padded to their prompt's width -> conv stack (by width) -> per-chunk positions -> each
        # chunk's real tokens, packed [sum tokens, D] in clip order.
        frames = torch.cat([f.to(device, dtype) for f in features], dim=1).T                # [sum L, M]
        pieces = frames.split(chunk_lens)
        widths = [w for clip, w in zip(per_clip, clip_widths) for _ in clip]                 # per chunk
        part = args.conv_chunksize if device.type == "cuda" else min(args.conv_chunksize, CPU_CONV_CHUNKS)
        kept: list[torch.Tensor | None] = [None] * len(pieces)
        for width in set(widths):
            at = [i for i, w in enumerate(widths) if w == width]
            chunks = nn.utils.rnn.pad_sequence([pieces[i] for i in at], batch_first=True)   # [N, width, M]
            chunks = chunks.transpose(1, 2)[:, None]                                        # [N, 1, M, width]
            x = torch.cat([self.downsample(p) for p in chunks.split(part)])                  # [N, T, D]
            T = x.shape[1]
            x = x + self.positions[:T].to(dtype)
            n_tok = [chunk_tokens[i] for i in at]
            valid = x[torch.arange(T, device=device) < torch.tensor(n_tok, device=device)[:, None]]
            for i, tokens in zip(at, valid.split(n_tok)):
                kept[i] = tokens
        x = torch.cat(kept)

        # 5. Windows of `window` tokens per clip (the last one shorter); each attends within itself. A window
        # spans n_window_infer // C chunks of the prompt's width, as alone.
        windows_of = [max(conv_out_len(w), 1) * (args.n_window_infer // C) for w in clip_widths]
        win_lens = [w for n, window in zip(clip_tokens, windows_of)
                    for w in [window] * (n // window) + ([n % window] if n % window else [])]
        windows = segment_groups(win_lens, device)
        for layer in self.layers:
            x = layer(x, windows)

        # 6. Project to the output width.
        return self.proj2(F.gelu(self.proj1(self.ln_post(x)))), clip_tokens
