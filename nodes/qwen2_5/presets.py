"""config.json (and its side files) of the `tiny25` and `small25` presets, laid out like the released
Qwen2.5-Omni-7B files (reference qwen2.5-omni.md sections 1, 9 and 10).

Rotary settings use the released spelling, `rope_theta` plus `rope_scaling`, which transformers 5 converts on
load; readers of our checkpoints must accept it (as they must for the real one). `tiny25` is reference
section 10 (about 21.6M parameters, most in the 152064-row embedding and lm_head); `small25` keeps the real
vocabulary and every stage a few times bigger, so timings mean something.
"""
from __future__ import annotations

import copy
from typing import Any

from ..qwen.config_overrides import apply_overrides
from ..qwen.preprocessor_config import preprocessor_config as qwen_preprocessor_config

PRESETS = ("tiny25", "small25")

# Released special-token ids (reference section 9).
MEDIA_IDS = dict(audio_token_index=151646, image_token_index=151655, video_token_index=151656,
                 audio_start_token_id=151647, audio_end_token_id=151648,
                 vision_start_token_id=151652, vision_end_token_id=151653)
TALKER_IDS = dict(tts_text_start_token_id=151860, tts_text_end_token_id=151861, tts_text_pad_token_id=151859,
                  tts_codec_start_token_id=8293, tts_codec_end_token_id=8294, tts_codec_pad_token_id=8292,
                  tts_codec_mask_token_id=8296)
# Speaker name -> the thinker-vocabulary id whose embedding conditions the Talker (spk_dict.pt's bos_token).
SPEAKERS = {"Chelsie": 151870, "Ethan": 151871}

_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny25": {
        "audio": dict(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64),
        "vision": dict(depth=4, hidden_size=32, intermediate_size=64, num_heads=4, fullatt_block_indexes=[1, 3]),
        "text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=4096, mrope_section=[2, 3, 3]),
        "talker": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, max_position_embeddings=4096, mrope_section=[2, 3, 3]),
        "dit": dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, head_dim=8, emb_dim=16,
                    block_size=24, look_ahead_layers=[1], look_backward_layers=[0, 2], enc_emb_dim=16, enc_dim=16,
                    enc_channels=[32, 32, 32, 32, 96], enc_attention_channels=8, enc_se_channels=8),
        "bigvgan": dict(upsample_initial_channel=128),
        "speaker": dict(ref_mel_frames=100),
    },
    "small25": {
        "audio": dict(d_model=256, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=1024),
        "vision": dict(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, fullatt_block_indexes=[1, 3]),
        "text": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                     num_key_value_heads=2, max_position_embeddings=32768, mrope_section=[8, 12, 12]),
        "talker": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=64, max_position_embeddings=32768,
                       mrope_section=[8, 12, 12]),
        "dit": dict(hidden_size=256, num_hidden_layers=8, num_attention_heads=4, head_dim=64, emb_dim=128,
                    block_size=24, look_ahead_layers=[4], look_backward_layers=[0, 6], enc_emb_dim=64, enc_dim=64,
                    enc_channels=[64, 64, 64, 64, 192], enc_attention_channels=16, enc_se_channels=16),
        "bigvgan": dict(upsample_initial_channel=256),
        "speaker": dict(ref_mel_frames=300),
    },
}

# `tiny25` in float32 for parity tests; `small25` in bfloat16 like the release (token2wav stays float32 there).
DEFAULT_DTYPE = {"tiny25": "float32", "small25": "bfloat16"}
FLOAT32_PREFIXES = ("token2wav.",)  # stored in float32 whatever the checkpoint's dtype, as released
SHARD_BYTES = {"tiny25": None, "small25": 160 * 2**20}  # None: a single model.safetensors


def _rope(theta: float, mrope_section: list[int]) -> dict[str, Any]:
    return {"rope_theta": theta, "rope_scaling": {"type": "default", "rope_type": "default",
                                                  "mrope_section": list(mrope_section)}}


def preset_config(preset: str, dtype: str | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The config.json dict of a preset; `overrides` updates sub-configs by dotted path, e.g.
    {"talker_config": {"head_dim": 8}} (an "mrope_section" override rewrites rope_scaling)."""
    if preset not in _SIZES:
        raise ValueError(f"unknown checkpoint preset '{preset}' (choose from {', '.join(PRESETS)})")
    s = copy.deepcopy(_SIZES[preset])
    text, talker = s["text"], s["talker"]
    hidden = text["hidden_size"]
    audio_config = dict(model_type="qwen2_5_omni_audio_encoder", num_mel_bins=128, **s["audio"], output_dim=hidden,
                        n_window=100, max_source_positions=1500, activation_function="gelu", scale_embedding=False,
                        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, init_std=0.02)
    vision_config = dict(model_type="qwen2_5_omni_vision_encoder", **s["vision"], in_channels=3, in_chans=3,
                         patch_size=14, spatial_patch_size=14, temporal_patch_size=2, spatial_merge_size=2,
                         window_size=112, out_hidden_size=hidden, hidden_act="silu", tokens_per_second=25,
                         init_std=0.02)
    text_config = dict(model_type="qwen2_5_omni_text", vocab_size=152064, **text, hidden_act="silu",
                       rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=32768, max_window_layers=28,
                       attention_dropout=0.0, tie_word_embeddings=False, use_cache=True, init_std=0.02)
    text_config.update(_rope(1e6, text_config.pop("mrope_section")))
    thinker_config = dict(model_type="qwen2_5_omni_thinker",
                          architectures=["Qwen2_5OmniThinkerForConditionalGeneration"], audio_config=audio_config,
                          vision_config=vision_config, text_config=text_config,
                          **MEDIA_IDS, vision_token_id=151654, position_id_per_seconds=25, seconds_per_chunk=2,
                          user_token_id=872, bos_token_id=151644, eos_token_id=151645, pad_token_id=151643,
                          ignore_index=-100, init_std=0.02, tie_word_embeddings=False)
    talker_config = dict(model_type="qwen2_5_omni_talker",
                         architectures=["Qwen2_5OmniTalkerForConditionalGeneration"], vocab_size=8448,
                         embedding_size=hidden, **talker, hidden_act="silu", rms_norm_eps=1e-6,
                         **MEDIA_IDS, **TALKER_IDS, position_id_per_seconds=25, seconds_per_chunk=2,
                         spatial_merge_size=2, use_sliding_window=False, sliding_window=32768, max_window_layers=28,
                         attention_dropout=0.0, tie_word_embeddings=False, use_cache=True, init_std=0.02)
    talker_config.update(_rope(1e6, talker_config.pop("mrope_section")))
    # num_embeds 8448 (released: 8193): every code a random Talker can emit (< 8448) has a DiT embedding row.
    dit_config = dict(model_type="qwen2_5_omni_dit", **s["dit"], ff_mult=2, repeats=2, num_embeds=8448, mel_dim=80,
                      max_position_embeddings=32768, enc_kernel_sizes=[5, 3, 3, 3, 1], enc_dilations=[1, 2, 3, 4, 1],
                      enc_res2net_scale=2, dropout=0.1, rope_theta=10000.0)
    bigvgan_config = dict(model_type="qwen2_5_omni_bigvgan", mel_dim=80, **s["bigvgan"],
                          resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
                          upsample_rates=[5, 3, 2, 2, 2, 2], upsample_kernel_sizes=[11, 7, 4, 4, 4, 4])
    config = dict(architectures=["Qwen2_5OmniForConditionalGeneration"], model_type="qwen2_5_omni",
                  thinker_config=thinker_config, talker_config=talker_config,
                  token2wav_config=dict(model_type="qwen2_5_omni_token2wav", dit_config=dit_config,
                                        bigvgan_config=bigvgan_config),
                  enable_audio_output=True, enable_talker=True, torch_dtype=dtype or DEFAULT_DTYPE[preset])
    return apply_overrides(config, overrides, _rope)


def speaker_shapes(preset: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """spk_dict.pt's tensor shapes: cond [1, enc_emb_dim] and ref_mel [1, T_ref, mel_dim]."""
    dit = config["token2wav_config"]["dit_config"]
    frames = _SIZES[preset]["speaker"]["ref_mel_frames"]
    return {"cond": (1, dit["enc_emb_dim"]), "ref_mel": (1, frames, dit["mel_dim"])}


def generation_config() -> dict[str, Any]:
    """generation_config.json: the Thinker's chat ids (it stops at <|im_end|>)."""
    return {"bos_token_id": 151644, "eos_token_id": 151645, "pad_token_id": 151643}


def preprocessor_config() -> dict[str, Any]:
    """preprocessor_config.json: the Whisper feature extractor (section 1, 300 s chunks) and the Qwen2-VL image
    processor (section 3.2, patch 14, the OpenAI-CLIP mean and std)."""
    return qwen_preprocessor_config("Qwen2_5OmniProcessor", 14, [0.48145466, 0.4578275, 0.40821073],
                                    [0.26862954, 0.26130258, 0.27577711])
