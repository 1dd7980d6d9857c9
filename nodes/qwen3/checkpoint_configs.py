"""config.json of the `tiny` and `small` presets, laid out like the released Qwen3-Omni-30B-A3B-Instruct file.

Rotary settings use the released (transformers 4.57) spelling, `rope_theta` plus `rope_scaling`, which
transformers 5 converts on load; readers of our checkpoints must accept it (as they must for the real one).
`tiny` is reference section 12 (about 21M parameters, most in the 152064-row embedding and lm_head);
`small` keeps the real vocabulary and the released layout with every stage a few times bigger.
"""
from __future__ import annotations

import copy
from typing import Any

from ..qwen.config_overrides import apply_overrides
from ..qwen.preprocessor_config import preprocessor_config as qwen_preprocessor_config
from ..qwen.special_tokens import RELEASED

PRESETS = ("tiny", "small")

# Released special-token ids (reference section 4), as nodes read them.
MEDIA_IDS = ("audio_token_id", "image_token_id", "video_token_id", "audio_start_token_id", "audio_end_token_id",
             "vision_start_token_id", "vision_end_token_id")
CODEC_IDS = ("codec_pad_id", "codec_bos_id", "codec_eos_token_id", "codec_nothink_id", "codec_think_bos_id",
             "codec_think_eos_id")
CHAT_IDS = ("im_start_token_id", "im_end_token_id", "system_token_id", "user_token_id", "assistant_token_id",
            "tts_pad_token_id", "tts_bos_token_id", "tts_eos_token_id")
SPEAKERS = {"chelsie": 2301, "ethan": 2302, "aiden": 2303}

_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "audio": dict(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
                      downsample_hidden_size=16),
        "vision": dict(depth=3, hidden_size=32, intermediate_size=64, num_heads=4, num_position_embeddings=64,
                       deepstack_visual_indexes=[0, 1]),
        "text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=32, moe_intermediate_size=32, num_experts=8,
                     num_experts_per_tok=2, max_position_embeddings=4096, mrope_section=[4, 6, 6]),
        "talker": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, moe_intermediate_size=16, num_experts=4,
                       num_experts_per_tok=2, shared_expert_intermediate_size=32, max_position_embeddings=4096,
                       mrope_section=[2, 3, 3], accept_hidden_layer=2, num_code_groups=4),
        "predictor": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=16),
        "code2wav": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         intermediate_size=64, decoder_dim=64),
    },
    "small": {
        "audio": dict(d_model=128, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=512,
                      downsample_hidden_size=64),
        "vision": dict(depth=4, hidden_size=128, intermediate_size=512, num_heads=4, num_position_embeddings=256,
                       deepstack_visual_indexes=[1, 2, 3]),
        "text": dict(hidden_size=512, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=8,
                     num_key_value_heads=2, head_dim=128, moe_intermediate_size=96, num_experts=16,
                     num_experts_per_tok=4, max_position_embeddings=32768, mrope_section=[24, 20, 20]),
        "talker": dict(hidden_size=256, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=64, moe_intermediate_size=64, num_experts=8,
                       num_experts_per_tok=2, shared_expert_intermediate_size=128, max_position_embeddings=32768,
                       mrope_section=[8, 12, 12], accept_hidden_layer=6, num_code_groups=16),
        "predictor": dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=64),
        "code2wav": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         intermediate_size=256, decoder_dim=192),
    },
}

# The dtype each preset is written in: `tiny` in float32 for parity tests; `small` in bfloat16 like the
# release (its real-vocabulary embedding and lm_head alone are 623 MB in float32).
DEFAULT_DTYPE = {"tiny": "float32", "small": "bfloat16"}


def _rope(theta: float, mrope_section: list[int] | None = None) -> dict[str, Any]:
    if mrope_section is None:
        return {"rope_theta": theta, "rope_scaling": None}
    return {"rope_theta": theta, "rope_scaling": {"rope_type": "default", "mrope_section": list(mrope_section),
                                                  "interleaved": True, "mrope_interleaved": True}}


def preset_config(preset: str, dtype: str | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The config.json dict of a preset; `overrides` updates sub-configs by dotted path, e.g.
    {"thinker_config.text_config": {"head_dim": 24}} (an "mrope_section" override rewrites rope_scaling)."""
    if preset not in _SIZES:
        raise ValueError(f"unknown checkpoint preset '{preset}' (choose from {', '.join(PRESETS)})")
    s = copy.deepcopy(_SIZES[preset])
    text, talker, predictor = s["text"], s["talker"], s["predictor"]
    hidden = text["hidden_size"]
    audio_config = dict(model_type="qwen3_omni_moe_audio_encoder", num_mel_bins=128, **s["audio"],
                        output_dim=hidden, n_window=50, n_window_infer=800, conv_chunksize=500,
                        max_source_positions=1500, activation_function="gelu", scale_embedding=False,
                        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    vision_config = dict(model_type="qwen3_omni_moe_vision_encoder", **s["vision"], in_channels=3, patch_size=16,
                         temporal_patch_size=2, spatial_merge_size=2, out_hidden_size=hidden,
                         hidden_act="gelu_pytorch_tanh")
    text_mrope = text.pop("mrope_section")
    text_config = dict(model_type="qwen3_omni_moe_text", vocab_size=152064, **text, norm_topk_prob=True,
                       decoder_sparse_step=1, mlp_only_layers=[], rms_norm_eps=1e-6, hidden_act="silu",
                       attention_bias=False, tie_word_embeddings=False, sliding_window=None,
                       **_rope(1e6, text_mrope))
    thinker_config = dict(model_type="qwen3_omni_moe_thinker", audio_config=audio_config,
                          vision_config=vision_config, text_config=text_config,
                          **{k: RELEASED[k] for k in MEDIA_IDS},
                          position_id_per_seconds=13, seconds_per_chunk=2,
                          user_token_id=RELEASED["user_token_id"])
    talker_top = {k: talker.pop(k) for k in ("accept_hidden_layer", "num_code_groups")}
    talker_mrope = talker.pop("mrope_section")
    talker_text = dict(model_type="qwen3_omni_moe_talker_text", vocab_size=3072, **talker, norm_topk_prob=True,
                       decoder_sparse_step=1, mlp_only_layers=[], rms_norm_eps=1e-6, hidden_act="silu",
                       attention_bias=False, sliding_window=None, **_rope(1e6, talker_mrope))
    groups = talker_top["num_code_groups"]
    code_predictor = dict(model_type="qwen3_omni_moe_talker_code_predictor", vocab_size=2048, **predictor,
                          num_code_groups=groups, rms_norm_eps=1e-6, hidden_act="silu", attention_bias=False,
                          max_position_embeddings=32768, **_rope(1e6))
    talker_config = dict(text_config=talker_text, code_predictor_config=code_predictor, num_code_groups=groups,
                         thinker_hidden_size=hidden, accept_hidden_layer=talker_top["accept_hidden_layer"],
                         **{k: RELEASED[k] for k in (*CODEC_IDS, "audio_token_id", "image_token_id",
                                                     "video_token_id", "vision_start_token_id",
                                                     "audio_start_token_id")},
                         position_id_per_seconds=13, spatial_merge_size=2, speaker_id=dict(SPEAKERS))
    code2wav_config = dict(codebook_size=2048, **s["code2wav"], sliding_window=72, num_quantizers=groups,
                           upsample_rates=[8, 5, 4, 3], upsampling_ratios=[2, 2], rms_norm_eps=1e-5,
                           layer_scale_initial_scale=0.01, max_position_embeddings=8000, hidden_act="silu",
                           attention_bias=False, **_rope(10000.0))
    config = dict(architectures=["Qwen3OmniMoeForConditionalGeneration"], model_type="qwen3_omni_moe",
                  thinker_config=thinker_config, talker_config=talker_config, code2wav_config=code2wav_config,
                  enable_audio_output=True, **{k: RELEASED[k] for k in CHAT_IDS},
                  torch_dtype=dtype or DEFAULT_DTYPE[preset], tie_word_embeddings=False)
    return apply_overrides(config, overrides, _rope)


def generation_config() -> dict[str, Any]:
    """generation_config.json: Qwen chat ids (the thinker stops at <|im_end|>)."""
    return {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643}


def preprocessor_config() -> dict[str, Any]:
    """preprocessor_config.json: the Whisper feature extractor (section 1) and Qwen2-VL image processor (section 3).

    image_mean/std are not confirmed for the release (section 3 [?]); we write the Qwen3-VL values 0.5/0.5,
    and consumers read them from this file.
    """
    return qwen_preprocessor_config("Qwen3OmniMoeProcessor", 16, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
