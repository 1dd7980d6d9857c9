"""Seeded random Qwen2.5-Omni checkpoints in the released on-disk format (loadable by transformers).

    write_checkpoint("ckpt/tiny25", "tiny25", seed=0)   # ~87 MB float32, one model.safetensors
    write_checkpoint("ckpt/small25", "small25")         # ~0.4 GB bfloat16 (token2wav float32), sharded + index
    default_checkpoint("small25")                       # built once into the user cache

A folder holds config.json, generation_config.json, preprocessor_config.json, the tokenizer files (real Qwen
vocabulary, Qwen2.5-Omni special tokens and chat template), spk_dict.pt (the speakers) and the weights of
every stage: thinker (audio_tower, visual, model, lm_head), talker and token2wav (DiT and BigVGAN). The keys
and shapes come from the stages' own key tables (each stage's weights.py), so what is written
is what the nodes read; tensors are drawn per key as nodes/common/checkpoint_files.py does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...runtime.cache import cache_root
from ..qwen.tokenizer_files import write_tokenizer_files
from ..common.checkpoint_files import Entry, cached_checkpoint, draw, write_json, write_weights
from ..common.key_table import EMBED, KeyTable
from .presets import (DEFAULT_DTYPE, FLOAT32_PREFIXES, PRESETS, SHARD_BYTES, SPEAKERS, generation_config,
                      preprocessor_config, preset_config, speaker_shapes)
from .special_tokens import CHAT_TEMPLATE, SPECIAL_TOKENS

FORMAT_VERSION = 1  # bump when the written tensors or files change, so cached checkpoints are rebuilt


def write_checkpoint(folder: str | Path, preset: str = "tiny25", seed: int = 0, *, dtype: str | None = None,
                     shard_bytes: int | None | str = "preset",
                     overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    """Write a seeded random checkpoint of `preset` ("tiny25" or "small25") into `folder` (created if needed).

    dtype: "float32" or "bfloat16" (default: float32 for tiny25, bfloat16 for small25; token2wav is float32
    in both, as released). shard_bytes: the most bytes per shard (None: one file). overrides: sub-config
    updates by dotted path, as in `presets.preset_config`.
    """
    import torch

    if preset not in PRESETS:
        raise ValueError(f"unknown checkpoint preset '{preset}' (choose from {', '.join(PRESETS)})")
    dtype = dtype or DEFAULT_DTYPE[preset]
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = preset_config(preset, dtype, overrides)
    write_weights(folder, checkpoint_entries(config), seed, torch_dtype,
                  SHARD_BYTES[preset] if shard_bytes == "preset" else shard_bytes, FLOAT32_PREFIXES)
    write_speakers(folder / "spk_dict.pt", speaker_shapes(preset, config), seed)
    write_json(folder / "config.json", config)
    write_json(folder / "generation_config.json", generation_config())
    write_json(folder / "preprocessor_config.json", preprocessor_config())
    write_tokenizer_files(folder, SPECIAL_TOKENS, CHAT_TEMPLATE)
    return folder


def default_checkpoint(preset: str = "tiny25", seed: int = 0) -> Path:
    """The path of a cached checkpoint of `preset`, written on first use into omnigraph's cache folder."""
    return cached_checkpoint(cache_root() / f"{preset}-v{FORMAT_VERSION}-seed{seed}",
                             lambda folder: write_checkpoint(folder, preset, seed))


def key_tables(config: dict[str, Any]) -> list[KeyTable]:
    """The key table of every stage."""
    from ..qwen2_5_audio_encoder.weights import key_table as audio_encoder
    from ..qwen2_5_talker.model import TalkerArgs
    from ..qwen2_5_talker.weights import talker_table
    from ..qwen2_5_thinker.weights import key_table as thinker
    from ..qwen2_5_vision_encoder.weights import key_table as vision_encoder
    from ..token2wav.args import BigVGANArgs, DiTArgs
    from ..token2wav.weights import bigvgan_table, dit_table

    return [audio_encoder(config), vision_encoder(config), thinker(config),
            talker_table(TalkerArgs.from_hf_config(config)), dit_table(DiTArgs.from_hf_config(config)),
            bigvgan_table(BigVGANArgs.from_hf_config(config))]


def checkpoint_entries(config: dict[str, Any]) -> list[Entry]:
    """(key, shape, init) of every tensor, each once: stages that read one tensor (the Thinker's embedding
    table) must agree on its shape."""
    seen: dict[str, tuple[tuple[int, ...], Any]] = {}
    for table in key_tables(config):
        for key, shape, init in table.entries():
            if key in seen and seen[key][0] != shape:
                raise ValueError(f"key tables disagree on the shape of {key}: {seen[key][0]} and {shape}")
            seen.setdefault(key, (shape, init))
    return [(key, shape, init) for key, (shape, init) in seen.items()]


def write_speakers(path: Path, shapes: dict[str, tuple[int, ...]], seed: int) -> None:
    """spk_dict.pt: {name: {"bos_token": int, "cond": [1, enc_emb_dim], "ref_mel": [1, T_ref, mel_dim]}}."""
    import torch

    speakers = {name: {"bos_token": bos, **{field: draw(f"spk_dict.{name}.{field}", shape, EMBED, seed)
                                            for field, shape in shapes.items()}}
                for name, bos in SPEAKERS.items()}
    torch.save(speakers, path)
