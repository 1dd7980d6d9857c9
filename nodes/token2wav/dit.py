"""The DiT of token2wav (reference qwen2.5-omni.md sections 7.2-7.3): predicts the flow velocity of a noisy mel
given the codec ids, the speaker's `cond` vector and the ECAPA encoding of its reference mel.

Blocks are AdaLN-Zero transformer layers (modulation from the time embedding, chunk order shift, scale, gate for
attention then MLP; the final norm's order is scale, shift). Attention is non-causal over blocks of
`block_size` mel frames: a query of block i sees keys of blocks i - back .. i + ahead (per layer); long
utterances are computed block by block (`block_attention`), in linear time and memory. RoPE turns
head 0 only, on interleaved pairs (x_2i, x_2i+1), at positions arange(N) of the call.

Shapes: B batch, N mel frames, C width, H heads, D head_dim, M mel bins.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..common.rope import apply_rope, inv_freq, rope_cos_sin

from .args import DiTArgs
from .ecapa import ECAPA

TIME_FREQS = 256  # width of the sinusoidal time features


def block_mask(n: int, block: int, back: int, ahead: int, device: torch.device) -> torch.Tensor:
    """[N, N] bool: query i sees key j iff -back <= j//block - i//block <= ahead."""
    b = torch.arange(n, device=device) // block
    diff = b[None, :] - b[:, None]
    return (diff >= -back) & (diff <= ahead)


def padding_mask(n: int, lengths: torch.Tensor) -> torch.Tensor:
    """lengths [B] -> [B, N, N] bool: a row's query sees its padding frames (those from its length on) only if
    it is one itself, so a row's frames are those it gets alone and no padding query is left without keys."""
    valid = torch.arange(n, device=lengths.device)[None] < lengths[:, None]  # [B, N]
    return valid[:, None, :] | ~valid[:, :, None]


def block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int, back: int,
                    ahead: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """q, k, v [B, H, N, D] -> [B, H, N, D]: a query of block i (frames i*block ..) attends to the keys of blocks
    i - back .. i + ahead only (and, with lengths [B], a row's frames to its first lengths[b] keys: rows padded
    after their ends). Past a few windows' worth of blocks, each block attends to its window of keys alone, so
    the cost grows as N, not N^2 (the same softmax as the full block mask; measured on one core at 2000 frames,
    16 heads: 6x faster); below, one masked SDPA is faster."""
    B, H, N, D = q.shape
    n, W = -(-N // block), back + ahead + 1  # blocks, blocks per window
    if n <= 4 * W:
        mask = block_mask(N, block, back, ahead, q.device)
        if lengths is not None:
            mask = (mask & padding_mask(N, lengths))[:, None]  # [B, 1, N, N]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    q, k, v = (F.pad(t, (0, 0, 0, n * block - N)).view(B, H, n, block, D) for t in (q, k, v))

    def windows(t: torch.Tensor) -> torch.Tensor:  # [B, H, n, block, D] -> [B, H, n, W * block, D]
        t = F.pad(t, (0, 0, 0, 0, back, ahead))
        return torch.cat([t[:, :, o:o + n] for o in range(W)], dim=3)

    first = torch.arange(n, device=q.device)[:, None] - back + torch.arange(W, device=q.device)  # [n, W]
    frames = (first[..., None] * block + torch.arange(block, device=q.device)).view(n, 1, W * block)
    scores = (q @ windows(k).transpose(-1, -2)) * D ** -0.5  # [B, H, n, block, W * block]
    hidden = (frames < 0) | (frames >= N)  # [n, 1, W * block]
    if lengths is not None:  # a row's padding keys, for its own frames' queries: [B, 1, n, block, W * block]
        end = lengths.view(B, 1, 1, 1, 1)
        queries = torch.arange(n * block, device=q.device).view(n, block, 1)
        hidden = hidden | ((frames >= end) & (queries < end))
    scores = scores.masked_fill(hidden, float("-inf"))
    return (scores.softmax(-1) @ windows(v)).view(B, H, n * block, D)[:, :, :N]


def time_features(t: torch.Tensor) -> torch.Tensor:
    """t [B] in [0, 1] -> [B, 256]: sin then cos of 1000 t * 10000^(-i/127)."""
    half = TIME_FREQS // 2
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
    angles = 1000 * t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(t.dtype)


class TimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.time_mlp = nn.ModuleList([nn.Linear(TIME_FREQS, dim), nn.SiLU(), nn.Linear(dim, dim)])

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        x = time_features(t)
        for layer in self.time_mlp:
            x = layer(x)
        return x


class CodecEmbedding(nn.Module):
    def __init__(self, a: DiTArgs):
        super().__init__()
        self.repeats = a.repeats
        self.codec_embed = nn.Embedding(a.num_embeds + 1, a.emb_dim)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> [B, repeats * T, emb_dim], each code's row repeated for its mel frames."""
        return self.codec_embed(codes).repeat_interleave(self.repeats, dim=1)


class InputEmbedding(nn.Module):
    def __init__(self, a: DiTArgs):
        super().__init__()
        self.proj = nn.Linear(a.mel_dim + a.enc_dim + a.emb_dim + a.enc_emb_dim, a.dim)
        self.spk_encoder = ECAPA(a)


class AdaNorm(nn.Module):
    """Non-affine LayerNorm whose `n` modulations come from SiLU(temb) (order as split by the caller)."""

    def __init__(self, dim: int, n: int):
        super().__init__()
        self.linear = nn.Linear(dim, n * dim)
        self.n = n

    def modulations(self, temb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(m[:, None] for m in self.linear(F.silu(temb)).chunk(self.n, dim=-1))


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


class Attention(nn.Module):
    def __init__(self, a: DiTArgs):
        super().__init__()
        inner = a.n_heads * a.head_dim
        self.n_heads, self.head_dim = a.n_heads, a.head_dim
        self.to_q, self.to_k, self.to_v = nn.Linear(a.dim, inner), nn.Linear(a.dim, inner), nn.Linear(a.dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, a.dim)])

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, block: int, back: int,
                ahead: int, lengths: torch.Tensor | None) -> torch.Tensor:
        B, N, _ = x.shape
        q, k, v = (p(x).view(B, N, self.n_heads, self.head_dim).transpose(1, 2)
                   for p in (self.to_q, self.to_k, self.to_v))
        q, k = rope_head_0(q, cos, sin), rope_head_0(k, cos, sin)
        out = block_attention(q, k, v, block, back, ahead, lengths)
        return self.to_out[0](out.transpose(1, 2).reshape(B, N, -1))


def rope_head_0(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, N, D]: head 0 rotated on its interleaved pairs. Written as rotate-half on the de-interleaved
    head (x_0, x_2, ..., x_1, x_3, ...): the same dot products, since q and k share the reordering."""
    head = torch.cat([x[:, :1, :, 0::2], x[:, :1, :, 1::2]], dim=-1)
    return torch.cat([apply_rope(head, cos, sin), x[:, 1:]], dim=1)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int):
        super().__init__()
        self.ff = nn.ModuleDict({"0": nn.Linear(dim, dim * mult), "3": nn.Linear(dim * mult, dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff["3"](F.gelu(self.ff["0"](x), approximate="tanh"))


class DiTBlock(nn.Module):
    def __init__(self, a: DiTArgs, back: int, ahead: int):
        super().__init__()
        self.block, self.back, self.ahead = a.block_size, back, ahead
        self.attn_norm = AdaNorm(a.dim, 6)
        self.attn = Attention(a)
        self.ff = FeedForward(a.dim, a.ff_mult)

    def forward(self, x, temb, cos, sin, lengths):
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.attn_norm.modulations(temb)
        x = x + gate_a * self.attn(layer_norm(x) * (1 + scale_a) + shift_a, cos, sin, self.block, self.back,
                                   self.ahead, lengths)
        return x + gate_m * self.ff(layer_norm(x) * (1 + scale_m) + shift_m)


class DiT(nn.Module):
    def __init__(self, a: DiTArgs):
        super().__init__()
        self.args = a
        self.time_embed = TimeEmbedding(a.dim)
        self.text_embed = CodecEmbedding(a)
        self.input_embed = InputEmbedding(a)
        self.transformer_blocks = nn.ModuleList(DiTBlock(a, back, ahead) for back, ahead in zip(a.look_back,
                                                                                               a.look_ahead))
        self.norm_out = AdaNorm(a.dim, 2)
        self.proj_out = nn.Linear(a.dim, a.mel_dim)
        self.register_buffer("freqs", inv_freq(a.head_dim, a.rope_theta), persistent=False)

    def init_buffers(self, device: str) -> None:
        self.freqs = inv_freq(self.args.head_dim, self.args.rope_theta).to(device)

    def voice(self, cond: torch.Tensor, ref_mel: torch.Tensor, guided: bool = True) -> tuple[torch.Tensor, ...]:
        """The speaker's part of the conditioning, fixed for an utterance: (ECAPA(ref_mel) [B, enc_dim], cond
        [B, enc_emb_dim]); `guided`: the unconditional rows (cond and ref_mel zero) follow, [2B, ...].
        cond [B, enc_emb_dim], ref_mel [B, T_ref, M]."""
        if guided:
            cond, ref_mel = torch.cat([cond, torch.zeros_like(cond)]), torch.cat([ref_mel, torch.zeros_like(ref_mel)])
        return self.input_embed.spk_encoder(ref_mel), cond

    def conditioning(self, codes: torch.Tensor, voice: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """What the input projection reads besides the noisy mel, fixed over the ODE: [ECAPA(ref_mel) | code
        embedding | cond] per frame, [2B (guided; else B), N, enc_dim + emb_dim + enc_emb_dim]. The unconditional
        rows embed code 0. codes [B, T], voice from `voice`."""
        speaker, cond = voice
        if speaker.shape[0] == 2 * codes.shape[0]:
            codes = torch.cat([codes, torch.zeros_like(codes)])
        code = self.text_embed(codes)
        N = code.shape[1]
        return torch.cat([speaker[:, None].expand(-1, N, -1), code, cond[:, None].expand(-1, N, -1)], dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, conditioning: torch.Tensor,
                lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, N, M] noisy mel, t [B] times, conditioning [B, N, ...] (`conditioning`), lengths [B] (rows
        padded after their ends; None: none) -> velocity [B, N, M]."""
        temb = self.time_embed(t)
        h = self.input_embed.proj(torch.cat([x, conditioning], dim=-1))
        cos, sin = rope_cos_sin(torch.arange(x.shape[1], device=x.device), self.freqs, x.dtype)
        for block in self.transformer_blocks:
            h = block(h, temb, cos, sin, lengths)
        scale, shift = self.norm_out.modulations(temb)
        return self.proj_out(layer_norm(h) * (1 + scale) + shift)
