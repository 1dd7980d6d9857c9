"""Every tensor of a Qwen3-Omni checkpoint: on-disk key -> shape, derived from config.json (reference sections 2-8).

Each entry also says how the writer initialises it, at scales that keep activations lively:
`("normal", mean, std)`. Projections get std gain/sqrt(fan_in), norms weight 1 (+ noise), embeddings std 1.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

Init = tuple[str, float, float]
Entry = tuple[str, tuple[int, ...], Init]

NORM_W: Init = ("normal", 1.0, 0.05)   # RMSNorm / LayerNorm weights: 1 plus a little noise
SMALL: Init = ("normal", 0.0, 0.02)    # biases
EMBED: Init = ("normal", 0.0, 1.0)


def _w(fan_in: int, gain: float = 1.0) -> Init:
    return ("normal", 0.0, gain / math.sqrt(fan_in))


def _linear(name: str, out_f: int, in_f: int, bias: bool, gain: float = 1.0) -> Iterator[Entry]:
    yield f"{name}.weight", (out_f, in_f), _w(in_f, gain)
    if bias:
        yield f"{name}.bias", (out_f,), SMALL


def _norm(name: str, dim: int, bias: bool = False) -> Iterator[Entry]:
    yield f"{name}.weight", (dim,), NORM_W
    if bias:
        yield f"{name}.bias", (dim,), SMALL


def _head_dim(c: dict[str, Any]) -> int:
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def _attention(p: str, c: dict[str, Any], qk_norm: bool) -> Iterator[Entry]:
    h, hd = c["hidden_size"], _head_dim(c)
    nq, nkv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    yield from _linear(f"{p}.q_proj", nq, h, False)
    yield from _linear(f"{p}.k_proj", nkv, h, False)
    yield from _linear(f"{p}.v_proj", nkv, h, False)
    yield from _linear(f"{p}.o_proj", h, nq, False)
    if qk_norm:
        yield from _norm(f"{p}.q_norm", hd)
        yield from _norm(f"{p}.k_norm", hd)


def _swiglu(p: str, hidden: int, inter: int) -> Iterator[Entry]:
    yield from _linear(f"{p}.gate_proj", inter, hidden, False)
    yield from _linear(f"{p}.up_proj", inter, hidden, False)
    yield from _linear(f"{p}.down_proj", hidden, inter, False)


def _moe(p: str, c: dict[str, Any], shared: bool) -> Iterator[Entry]:
    h = c["hidden_size"]
    experts = c.get("num_experts", c.get("num_local_experts"))
    yield from _linear(f"{p}.gate", experts, h, False)
    for e in range(experts):
        yield from _swiglu(f"{p}.experts.{e}", h, c["moe_intermediate_size"])
    if shared:
        yield from _swiglu(f"{p}.shared_expert", h, c["shared_expert_intermediate_size"])
        yield from _linear(f"{p}.shared_expert_gate", 1, h, False)


def _is_sparse(c: dict[str, Any], i: int) -> bool:
    experts = c.get("num_experts", c.get("num_local_experts")) or 0
    step = c.get("decoder_sparse_step", 1) or 1
    return i not in (c.get("mlp_only_layers") or []) and experts > 0 and (i + 1) % step == 0


def audio_tower(c: dict[str, Any]) -> Iterator[Entry]:
    """thinker.audio_tower.* (section 2)."""
    d, dh, ffn = c["d_model"], c["downsample_hidden_size"], c["encoder_ffn_dim"]
    freq = c["num_mel_bins"]
    for i, cin in enumerate((1, dh, dh), start=1):
        yield f"conv2d{i}.weight", (dh, cin, 3, 3), _w(cin * 9)
        yield f"conv2d{i}.bias", (dh,), SMALL
        freq = (freq - 1) // 2 + 1
    yield from _linear("conv_out", d, dh * freq, False)
    for i in range(c["encoder_layers"]):
        p = f"layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            yield from _linear(f"{p}.self_attn.{proj}", d, d, True)
        yield from _norm(f"{p}.self_attn_layer_norm", d, bias=True)
        yield from _linear(f"{p}.fc1", ffn, d, True)
        yield from _linear(f"{p}.fc2", d, ffn, True)
        yield from _norm(f"{p}.final_layer_norm", d, bias=True)
    yield from _norm("ln_post", d, bias=True)
    yield from _linear("proj1", d, d, True)
    yield from _linear("proj2", c["output_dim"], d, True)


def visual(c: dict[str, Any]) -> Iterator[Entry]:
    """thinker.visual.* (section 3)."""
    h, inter, out = c["hidden_size"], c["intermediate_size"], c["out_hidden_size"]
    ps, tps, cin = c["patch_size"], c["temporal_patch_size"], c["in_channels"]
    merged = h * c["spatial_merge_size"] ** 2
    yield "patch_embed.proj.weight", (h, cin, tps, ps, ps), _w(cin * tps * ps * ps)
    yield "patch_embed.proj.bias", (h,), SMALL
    yield "pos_embed.weight", (c["num_position_embeddings"], h), ("normal", 0.0, 0.5)
    for i in range(c["depth"]):
        p = f"blocks.{i}"
        yield from _norm(f"{p}.norm1", h, bias=True)
        yield from _norm(f"{p}.norm2", h, bias=True)
        yield from _linear(f"{p}.attn.qkv", 3 * h, h, True)
        yield from _linear(f"{p}.attn.proj", h, h, True)
        yield from _linear(f"{p}.mlp.linear_fc1", inter, h, True)
        yield from _linear(f"{p}.mlp.linear_fc2", h, inter, True)
    mergers = [("merger", h)] + [(f"merger_list.{j}", merged) for j in range(len(c["deepstack_visual_indexes"]))]
    for name, ln_dim in mergers:
        yield from _norm(f"{name}.ln_q", ln_dim, bias=True)
        yield from _linear(f"{name}.mlp.0", merged, merged, True)
        yield from _linear(f"{name}.mlp.2", out, merged, True)


def thinker_text(c: dict[str, Any]) -> Iterator[Entry]:
    """thinker.model.* (section 5); lm_head is listed by `checkpoint_entries`."""
    h = c["hidden_size"]
    yield "embed_tokens.weight", (c["vocab_size"], h), EMBED
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}"
        yield from _attention(f"{p}.self_attn", c, qk_norm=True)
        if _is_sparse(c, i):
            yield from _moe(f"{p}.mlp", c, shared=False)
        else:
            yield from _swiglu(f"{p}.mlp", h, c["intermediate_size"])
        yield from _norm(f"{p}.input_layernorm", h)
        yield from _norm(f"{p}.post_attention_layernorm", h)
    yield from _norm("norm", h)


def talker(c: dict[str, Any]) -> Iterator[Entry]:
    """talker.* without the code predictor (section 6). Every talker layer is MoE with a shared expert."""
    t = c["text_config"]
    h, width, thinker_h = t["hidden_size"], t["intermediate_size"], c["thinker_hidden_size"]
    yield "model.codec_embedding.weight", (t["vocab_size"], h), EMBED
    for i in range(t["num_hidden_layers"]):
        p = f"model.layers.{i}"
        yield from _attention(f"{p}.self_attn", t, qk_norm=True)
        yield from _moe(f"{p}.mlp", t, shared=True)
        yield from _norm(f"{p}.input_layernorm", h)
        yield from _norm(f"{p}.post_attention_layernorm", h)
    yield from _norm("model.norm", h)
    for name in ("text_projection", "hidden_projection"):
        yield from _linear(f"{name}.linear_fc1", width, thinker_h, True)
        yield from _linear(f"{name}.linear_fc2", h, width, True)
    yield from _linear("codec_head", t["vocab_size"], h, False, gain=2.0)


def code_predictor(c: dict[str, Any]) -> Iterator[Entry]:
    """talker.code_predictor.* (section 7): G-1 codec embeddings and G-1 heads."""
    h = c["hidden_size"]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        yield from _attention(f"{p}.self_attn", c, qk_norm=True)
        yield from _swiglu(f"{p}.mlp", h, c["intermediate_size"])
        yield from _norm(f"{p}.input_layernorm", h)
        yield from _norm(f"{p}.post_attention_layernorm", h)
    yield from _norm("model.norm", h)
    for g in range(c["num_code_groups"] - 1):
        yield f"model.codec_embedding.{g}.weight", (c["vocab_size"], h), EMBED
    for g in range(c["num_code_groups"] - 1):
        yield from _linear(f"lm_head.{g}", c["vocab_size"], h, False, gain=2.0)


def _snake(p: str, dim: int) -> Iterator[Entry]:
    yield f"{p}.alpha", (dim,), ("normal", 0.0, 0.1)  # log-space: exp(alpha) ~ 1
    yield f"{p}.beta", (dim,), ("normal", 0.0, 0.1)


def code2wav(c: dict[str, Any]) -> Iterator[Entry]:
    """code2wav.* (section 8)."""
    h, dec = c["hidden_size"], c["decoder_dim"]
    yield "code_embedding.weight", (c["num_quantizers"] * c["codebook_size"], h), EMBED
    for i in range(c["num_hidden_layers"]):
        p = f"pre_transformer.layers.{i}"
        yield from _attention(f"{p}.self_attn", c, qk_norm=False)
        yield from _swiglu(f"{p}.mlp", h, c["intermediate_size"])
        yield from _norm(f"{p}.input_layernorm", h)
        yield from _norm(f"{p}.post_attention_layernorm", h)
        yield f"{p}.self_attn_layer_scale.scale", (h,), ("normal", 0.3, 0.05)
        yield f"{p}.mlp_layer_scale.scale", (h,), ("normal", 0.3, 0.05)
    yield from _norm("pre_transformer.norm", h)
    for k, ratio in enumerate(c["upsampling_ratios"]):
        p = f"upsample.{k}"
        yield f"{p}.0.conv.weight", (h, h, ratio), _w(h)  # ConvTranspose1d [in, out, k], stride = k
        yield f"{p}.0.conv.bias", (h,), SMALL
        yield f"{p}.1.dwconv.conv.weight", (h, 1, 7), _w(7)
        yield f"{p}.1.dwconv.conv.bias", (h,), SMALL
        yield from _norm(f"{p}.1.norm", h, bias=True)
        yield from _linear(f"{p}.1.pwconv1", 4 * h, h, True)
        yield from _linear(f"{p}.1.pwconv2", h, 4 * h, True)
        yield f"{p}.1.gamma", (h,), ("normal", 0.3, 0.05)
    yield "decoder.0.conv.weight", (dec, h, 7), _w(h * 7)
    yield "decoder.0.conv.bias", (dec,), SMALL
    dim = dec
    for i, rate in enumerate(c["upsample_rates"], start=1):
        p, out = f"decoder.{i}.block", dim // 2
        yield from _snake(f"{p}.0", dim)
        yield f"{p}.1.conv.weight", (dim, out, 2 * rate), _w(dim * 2)  # each output sample sees 2 taps per input
        yield f"{p}.1.conv.bias", (out,), SMALL
        for u in (2, 3, 4):
            yield from _snake(f"{p}.{u}.act1", out)
            yield from _snake(f"{p}.{u}.act2", out)
            yield f"{p}.{u}.conv1.conv.weight", (out, out, 7), _w(out * 7)
            yield f"{p}.{u}.conv1.conv.bias", (out,), SMALL
            yield f"{p}.{u}.conv2.conv.weight", (out, out, 1), _w(out, gain=0.3)  # keep residual growth small
            yield f"{p}.{u}.conv2.conv.bias", (out,), SMALL
        dim = out
    n = len(c["upsample_rates"]) + 1
    yield from _snake(f"decoder.{n}", dim)
    yield f"decoder.{n + 1}.conv.weight", (1, dim, 7), _w(dim * 7, gain=0.07)
    yield f"decoder.{n + 1}.conv.bias", (1,), ("normal", 0.0, 0.0)


def checkpoint_entries(config: dict[str, Any]) -> list[Entry]:
    """(key, shape, init) for every tensor of the checkpoint, in stage order."""
    thinker = config["thinker_config"]
    out: list[Entry] = []
    stages = [("thinker.audio_tower.", audio_tower(thinker["audio_config"])),
              ("thinker.visual.", visual(thinker["vision_config"])),
              ("thinker.model.", thinker_text(thinker["text_config"])),
              ("thinker.", _linear("lm_head", thinker["text_config"]["vocab_size"],
                                   thinker["text_config"]["hidden_size"], False, gain=2.0))]
    if config.get("enable_audio_output", True):
        stages += [("talker.", talker(config["talker_config"])),
                   ("talker.code_predictor.", code_predictor(config["talker_config"]["code_predictor_config"])),
                   ("code2wav.", code2wav(config["code2wav_config"]))]
    for prefix, entries in stages:
        out += [(prefix + key, tuple(shape), init) for key, shape, init in entries]
    return out


def expected_shapes(config: dict[str, Any], prefix: str) -> dict[str, tuple[int, ...]]:
    """Shapes of every tensor under `prefix`, keyed without it (the form `Checkpoint.load` takes)."""
    return {k[len(prefix):]: s for k, s, _ in checkpoint_entries(config) if k.startswith(prefix)}
