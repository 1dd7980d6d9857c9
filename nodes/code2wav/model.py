"""Qwen3-Omni Code2Wav: G codebook codes per 80 ms frame -> 24 kHz waveform, causal and streamable.

Shapes: B batch, G quantizers, T frames, C pre-transformer width, H/K query/kv heads, D head_dim,
L samples at some stage of the decoder, Ci/Co conv channels.

Every stage is causal, so each module runs on a chunk of new samples and keeps what the next chunk needs in a
`StreamState` slot (stream_state.py; one entry per module, keyed by its name in the model): the last W-1
keys/values of each attention layer, the last (k-1)*dilation inputs of each causal conv, the last input of each
decoder transposed conv. A fresh state plus all T frames is the whole-utterance decode; the same state fed
frame by frame gives the same samples (1920*T - 555 after T frames, a prefix of the longer decode: nothing is
ever withheld). One call decodes B streams at once (one slot per row), each at its own position, provided all
are in the same phase (see `phase`): every row of a call gets the same number of samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..common.kv_cache import KVCache
from ..common.linear import Linear
from ..common.moe import SwiGLU
from ..common.rmsnorm import RMSNorm
from ..common.rope import apply_rope, inv_freq, rope_cos_sin
from .stream_state import Step, StreamState


@dataclass(frozen=True)
class Code2WavArgs:
    codebook_size: int = 2048
    num_quantizers: int = 16
    hidden_size: int = 1024
    num_hidden_layers: int = 8
    num_attention_heads: int = 16
    num_key_value_heads: int = 16
    head_dim: int = 64
    intermediate_size: int = 3072
    sliding_window: int = 72
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    attention_bias: bool = False
    decoder_dim: int = 1536
    upsample_rates: tuple[int, ...] = (8, 5, 4, 3)
    upsampling_ratios: tuple[int, ...] = (2, 2)

    @classmethod
    def from_hf_config(cls, config: dict[str, Any]) -> Code2WavArgs:
        """From a full config.json (reads `code2wav_config`) or the code2wav_config dict itself."""
        c = config.get("code2wav_config", config)
        rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
        heads = c.get("num_attention_heads", cls.num_attention_heads)
        hidden = c.get("hidden_size", cls.hidden_size)
        args = cls(
            codebook_size=c.get("codebook_size", cls.codebook_size),
            num_quantizers=c.get("num_quantizers", cls.num_quantizers),
            hidden_size=hidden, num_hidden_layers=c.get("num_hidden_layers", cls.num_hidden_layers),
            num_attention_heads=heads, num_key_value_heads=c.get("num_key_value_heads", heads),
            head_dim=c.get("head_dim") or hidden // heads,
            intermediate_size=c.get("intermediate_size", cls.intermediate_size),
            sliding_window=c.get("sliding_window", cls.sliding_window),
            rope_theta=float(rope.get("rope_theta", c.get("rope_theta", cls.rope_theta))),
            rms_norm_eps=c.get("rms_norm_eps", cls.rms_norm_eps),
            attention_bias=bool(c.get("attention_bias", False)),
            decoder_dim=c.get("decoder_dim", cls.decoder_dim),
            upsample_rates=tuple(c.get("upsample_rates", cls.upsample_rates)),
            upsampling_ratios=tuple(c.get("upsampling_ratios", cls.upsampling_ratios)))
        if args.num_attention_heads % args.num_key_value_heads:
            raise ValueError(f"num_attention_heads {heads} is not a multiple of num_key_value_heads "
                             f"{args.num_key_value_heads}")
        if args.sliding_window < 1:
            raise ValueError(f"sliding_window must be at least 1, got {args.sliding_window}")
        return args

    @property
    def samples_per_frame(self) -> int:
        return math.prod(self.upsampling_ratios) * math.prod(self.upsample_rates)

    def num_samples(self, frames: int) -> int:
        """Waveform length of a decode of `frames` frames (1920*T - 555 for the released sizes)."""
        n = frames * math.prod(self.upsampling_ratios)
        for r in self.upsample_rates:
            n = max(n - 1, 0) * r
        return n


class Streaming(nn.Module):
    """A module that keeps state between chunks under `self.key` in the step's state (set by Code2Wav)."""

    key: str = ""


# -- pre-transformer -----------------------------------------------------------------------------------------
class WindowAttention(nn.Module):
    """Causal sliding-window attention with RoPE; layer `layer` of the state's windowed KV cache."""

    def __init__(self, args: Code2WavArgs):
        super().__init__()
        self.h, self.k, self.d = args.num_attention_heads, args.num_key_value_heads, args.head_dim
        self.wqkv = Linear(args.hidden_size, (self.h + 2 * self.k) * self.d, bias=args.attention_bias)
        self.wo = Linear(self.h * self.d, args.hidden_size, bias=args.attention_bias)
        self.layer = 0  # its index in the KV cache (set by Code2Wav)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, step: Step) -> torch.Tensor:
        B, T, _ = x.shape  # x [B, T, C] new frames; cos, sin [B, 1, T, D] at each row's positions
        q, k, v = (x @ self.wqkv.weight if self.wqkv.bias is None else self.wqkv(x)).split(
            [self.h * self.d, self.k * self.d, self.k * self.d], dim=-1)
        q = q.view(B, T, self.h, self.d).transpose(1, 2)  # [B, H, T, D]
        k = k.view(B, T, self.k, self.d).transpose(1, 2)  # [B, K, T, D]
        v = v.view(B, T, self.k, self.d).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = step.state.kv.write(self.layer, step.rows, k, v)  # [B, K, L, D]: the ring, every cell
        if self.k != self.h:
            k, v = k.repeat_interleave(self.h // self.k, 1), v.repeat_interleave(self.h // self.k, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=step.rows.mask)  # the last W positions each
        return self.wo(out.transpose(1, 2).reshape(B, T, self.h * self.d))


class TransformerLayer(nn.Module):
    """x + attn_scale * attn(norm(x)), then x + mlp_scale * mlp(norm(x)) (LayerScale vectors [C])."""

    def __init__(self, args: Code2WavArgs):
        super().__init__()
        C = args.hidden_size
        self.attn_norm, self.mlp_norm = RMSNorm(C, args.rms_norm_eps), RMSNorm(C, args.rms_norm_eps)
        self.attn, self.mlp = WindowAttention(args), SwiGLU(C, args.intermediate_size)
        self.attn_scale, self.mlp_scale = nn.Parameter(torch.ones(C)), nn.Parameter(torch.ones(C))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, step: Step) -> torch.Tensor:
        x = x + self.attn_scale * self.attn(self.attn_norm(x), cos, sin, step)
        return x + self.mlp_scale * self.mlp(self.mlp_norm(x))


# -- convolutions --------------------------------------------------------------------------------------------
class CausalConv(Streaming):
    """Conv1d (stride 1) with (k-1)*dilation zeros of left padding; keeps that many past inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, groups=groups)
        self.context = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        B, Ci, L = x.shape  # x [B, Ci, L] -> [B, Co, L]
        if self.context == 0:
            return self.conv(x)
        x = torch.cat([step.past(self.key), x], dim=-1)  # a fresh stream's past is zeros
        step.keep(self.key, x[..., L:])
        if L == 0:
            return x.new_empty(B, self.conv.out_channels, 0)
        d = self.conv.dilation[0]
        if d == 1 or self.conv.groups != 1:
            return self.conv(x)
        # A dilated conv is d interleaved plain convs: as one conv2d over [time // d, phase] it takes
        # oneDNN's fast path, where short dilated inputs would otherwise hit a slow generic kernel.
        pad = -L % d
        x = F.pad(x, (0, pad)).view(B, Ci, -1, d)                                # [B, Ci, (L+pad)/d + k-1, d]
        y = F.conv2d(x, self.conv.weight[..., None], self.conv.bias)             # [B, Co, (L+pad)/d, d]
        return y.reshape(B, -1, L + pad)[..., :L]


class TransConv(Streaming):
    """ConvTranspose1d(kernel 2r, stride r) trimmed by r on both sides: L inputs -> (L-1)*r outputs.

    Output n (before trimming) needs inputs n//r and n//r - 1, so each new input i >= 1 completes r samples
    together with input i-1; the cache keeps that last input. Input 0 completes nothing: its first r samples
    are trimmed, and with kernel == stride (the upsampler, no trim) the cache is not needed at all.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.ConvTranspose1d(c_in, c_out, kernel, stride=stride)
        self.stride, self.overlap = stride, kernel > stride
        if kernel not in (stride, 2 * stride):
            raise ValueError(f"transposed conv kernel {kernel} must be stride {stride} or twice it")

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        B, Ci, L = x.shape  # x [B, Ci, L] -> [B, Co, L*r] (L*r - r for the first chunk)
        r, Co = self.stride, self.conv.out_channels
        if not self.overlap:
            return self._taps(x).flatten(2) + self.conv.bias[:, None]             # [B, Co, L*r]
        if L == 0:
            return x.new_empty(B, Co, 0)
        if step.started(self.key):
            x = torch.cat([step.past(self.key), x], dim=-1)
        step.keep(self.key, x[..., -1:])
        step.mark_started(self.key)
        z = self._taps(x)                                                         # [B, Co, len(x), 2r]
        # Output block s (r samples) = first half of input s's taps + second half of input s-1's; the
        # trimmed ends are block 0 and the last block, so blocks 1 .. len(x)-1 remain.
        y = z[..., 1:, :r] + z[..., :-1, r:]                                      # [B, Co, len(x)-1, r]
        return y.flatten(2) + self.conv.bias[:, None]

    def _taps(self, x: torch.Tensor) -> torch.Tensor:
        """Every input sample times the kernel: [B, Ci, L] -> [B, Co, L, k] (one matmul, no overlap-add yet)."""
        Ci, Co, k = self.conv.weight.shape
        z = x.transpose(1, 2) @ self.conv.weight.reshape(Ci, Co * k)              # [B, L, Co*k]
        return z.view(x.shape[0], -1, Co, k).permute(0, 2, 1, 3)


class ConvNeXt(nn.Module):
    """x + gamma * pwconv2(gelu(pwconv1(layernorm(dwconv(x))))), channels-last in the middle."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = CausalConv(dim, dim, 7, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        y = self.dwconv(x, step).transpose(1, 2)  # [B, L, C]
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class SnakeBeta(nn.Module):
    """x + sin^2(x * e^alpha) / (e^beta + 1e-9), alpha/beta per channel in log space."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha, self.beta = nn.Parameter(torch.zeros(dim)), nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, L]
        a = self.alpha.exp()[:, None]
        inv_b = 1.0 / (self.beta.exp()[:, None] + 1e-9)
        return x + inv_b * torch.sin(x * a).pow(2)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.act1, self.act2 = SnakeBeta(dim), SnakeBeta(dim)
        self.conv1, self.conv2 = CausalConv(dim, dim, 7, dilation), CausalConv(dim, dim, 1)

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x), step)), step)


class DecoderBlock(nn.Module):
    """SnakeBeta, TransConv(in -> out, 2r, r), residual units with dilation 1, 3, 9 (`block.0` .. `block.4`)."""

    def __init__(self, c_in: int, c_out: int, rate: int):
        super().__init__()
        self.block = nn.ModuleList([SnakeBeta(c_in), TransConv(c_in, c_out, 2 * rate, rate),
                                    *(ResidualUnit(c_out, d) for d in (1, 3, 9))])

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        x = self.block[1](self.block[0](x), step)
        for unit in self.block[2:]:
            x = unit(x, step)
        return x


# -- the whole model -----------------------------------------------------------------------------------------
class Code2Wav(nn.Module):
    def __init__(self, args: Code2WavArgs):
        super().__init__()
        self.args = args
        G, C = args.num_quantizers, args.hidden_size
        self.embedding = nn.Embedding(G * args.codebook_size, C)
        self.layers = nn.ModuleList([TransformerLayer(args) for _ in range(args.num_hidden_layers)])
        self.norm = RMSNorm(C, args.rms_norm_eps)
        self.upsample = nn.ModuleList([nn.ModuleList([TransConv(C, C, r, r), ConvNeXt(C)])
                                       for r in args.upsampling_ratios])
        dims = [args.decoder_dim // 2 ** i for i in range(len(args.upsample_rates) + 1)]
        self.decoder = nn.ModuleList([CausalConv(C, dims[0], 7),
                                      *(DecoderBlock(dims[i], dims[i + 1], r)
                                        for i, r in enumerate(args.upsample_rates)),
                                      SnakeBeta(dims[-1]), CausalConv(dims[-1], 1, 7)])
        for name, module in self.named_modules():
            if isinstance(module, Streaming):
                module.key = name
        for i, layer in enumerate(self.layers):
            layer.attn.layer = i
        self.init_buffers()

    def init_buffers(self, device: torch.device | str | None = None) -> None:
        """Non-persistent buffers (quantizer offsets, RoPE frequencies); call after loading onto `meta`."""
        a = self.args
        self.register_buffer("code_offset", torch.arange(a.num_quantizers, device=device) * a.codebook_size,
                             persistent=False)
        self.register_buffer("freqs", inv_freq(a.head_dim, a.rope_theta).to(device), persistent=False)

    def new_state(self) -> StreamState:
        """Empty state for streams decoded by this model (on its device, in its dtype)."""
        a, w = self.args, self.embedding.weight
        convs = {m.key: (m.conv.in_channels, m.context) for m in self.modules()
                 if isinstance(m, CausalConv) and m.context}
        convs |= {m.key: (m.conv.in_channels, 1) for m in self.modules() if isinstance(m, TransConv) and m.overlap}
        kv = KVCache(a.num_hidden_layers, a.num_key_value_heads, a.head_dim, w.dtype, w.device,
                     window=a.sliding_window)
        return StreamState(convs, kv)

    def phase(self, frames_done: int) -> int:
        """Streams that may share a call: the same phase (and chunk length). A stream's first chunk is its own
        phase (0: the transposed convs trim their first input); once any sample came out, all are alike (-1)."""
        return frames_done if self.args.num_samples(frames_done) == 0 else -1

    def stream(self, codes: torch.Tensor, state: StreamState, slots: list[int]) -> torch.Tensor:
        """The next T frames of the streams in `slots` (one per row of codes [B, G, T]) -> their new samples
        [B, N], all final; the slots' states advance."""
        step = state.begin([(slots, codes.shape[-1])])[0]
        samples = self(codes, step)
        step.commit()
        return samples

    def forward(self, codes: torch.Tensor, step: Step | None = None) -> torch.Tensor:
        """codes [B, G, T] int -> waveform [B, N] in [-1, 1]. With a step, T new frames of B streams (N new
        samples, all final; the state advances at `step.commit()`); without, whole utterances
        (N = num_samples(T))."""
        if step is None:
            state = self.new_state()
            step = state.begin([([state.add() for _ in range(codes.shape[0])], codes.shape[-1])])[0]
        x = self.embedding(codes + self.code_offset[:, None]).mean(dim=1)  # [B, T, C]
        cos, sin = rope_cos_sin(step.positions, self.freqs, x.dtype)  # [B, T, D]
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, D]
        for layer in self.layers:
            x = layer(x, cos, sin, step)
        x = self.norm(x).transpose(1, 2)  # [B, C, T]
        for up, convnext in self.upsample:
            x = convnext(up(x, step), step)
        x = self.decoder[0](x, step)
        for block in self.decoder[1:-2]:
            x = block(x, step)
        x = self.decoder[-1](self.decoder[-2](x), step)  # [B, 1, N]
        return x.clamp(-1.0, 1.0).squeeze(1)

    def chunked_decode(self, codes: torch.Tensor, chunk_size: int = 300, left_context: int = 25) -> torch.Tensor:
        """The transformers generate() decode: independent chunks of `chunk_size` frames, each with up to
        `left_context` earlier frames whose samples are dropped ([B, G, T] -> [B, 1920*T - 555*chunks])."""
        out, T, per_frame = [], codes.shape[-1], self.args.samples_per_frame
        for start in range(0, T, chunk_size):
            ctx = left_context if start - left_context > 0 else start
            wav = self(codes[..., start - ctx:min(start + chunk_size, T)])
            out.append(wav[..., ctx * per_frame:])
        return torch.cat(out, dim=-1)
