"""The transformers oracle for Qwen2.5-Omni (test-only): tiny configs, random models and saved checkpoints.

BASE follows shared/reference/qwen2.5-omni.md section 10 (real special-token ids, 152064-token vocabulary);
VARIANT differs in head_dim, GQA ratio, mrope sections, audio window, vision windows, talker width and
DiT/BigVGAN sizes, so parity is checked on two configurations, not one lucky one. `overrides` vary more.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from config_overrides import with_overrides

BASE: dict[str, Any] = {
    "thinker_config": dict(
        audio_config=dict(num_mel_bins=128, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                          encoder_ffn_dim=64, output_dim=64, n_window=100, max_source_positions=1500),
        vision_config=dict(depth=4, hidden_size=32, intermediate_size=64, num_heads=4, in_channels=3,
                           patch_size=14, temporal_patch_size=2, spatial_merge_size=2, window_size=112,
                           out_hidden_size=64, fullatt_block_indexes=[1, 3], hidden_act="silu"),
        text_config=dict(vocab_size=152064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rms_norm_eps=1e-6, tie_word_embeddings=False,
                         rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[2, 3, 3])),
        audio_token_index=151646, image_token_index=151655, video_token_index=151656,
        audio_start_token_id=151647, audio_end_token_id=151648,
        vision_start_token_id=151652, vision_end_token_id=151653,
        position_id_per_seconds=25, seconds_per_chunk=2, user_token_id=872,
        bos_token_id=151644, eos_token_id=151645, pad_token_id=151643),
    "talker_config": dict(
        vocab_size=8448, embedding_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
        rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[2, 3, 3]),
        audio_token_index=151646, image_token_index=151655, video_token_index=151656,
        vision_start_token_id=151652, vision_end_token_id=151653,
        audio_start_token_id=151647, audio_end_token_id=151648,
        tts_text_start_token_id=151860, tts_text_end_token_id=151861, tts_text_pad_token_id=151859,
        tts_codec_start_token_id=8293, tts_codec_end_token_id=8294, tts_codec_pad_token_id=8292,
        tts_codec_mask_token_id=8296, position_id_per_seconds=25, seconds_per_chunk=2, spatial_merge_size=2),
    "token2wav_config": dict(
        dit_config=dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, head_dim=8, ff_mult=2,
                        emb_dim=16, repeats=2, num_embeds=8448, mel_dim=80, block_size=24,
                        look_ahead_layers=[1], look_backward_layers=[0, 2], max_position_embeddings=32768,
                        enc_emb_dim=16, enc_dim=16, enc_channels=[32, 32, 32, 32, 96],
                        enc_kernel_sizes=[5, 3, 3, 3, 1], enc_dilations=[1, 2, 3, 4, 1],
                        enc_attention_channels=8, enc_res2net_scale=2, enc_se_channels=8,
                        rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        bigvgan_config=dict(mel_dim=80, upsample_initial_channel=128, resblock_kernel_sizes=[3, 7, 11],
                            resblock_dilation_sizes=[[1, 3, 5]] * 3,
                            upsample_rates=[5, 3, 2, 2, 2, 2], upsample_kernel_sizes=[11, 7, 4, 4, 4, 4])),
}

# A second configuration that differs wherever the architecture has a free choice.
VARIANT: dict[str, dict[str, Any]] = {
    "thinker_config.audio_config": dict(d_model=48, encoder_attention_heads=3, encoder_ffn_dim=96,
                                        encoder_layers=3, output_dim=96, n_window=50),
    "thinker_config.vision_config": dict(depth=3, hidden_size=48, num_heads=3, intermediate_size=80,
                                         window_size=56, fullatt_block_indexes=[2], out_hidden_size=96),
    "thinker_config.text_config": dict(hidden_size=96, intermediate_size=160, num_hidden_layers=3,
                                       num_attention_heads=6, num_key_value_heads=2),
    "thinker_config.text_config.rope_parameters": dict(mrope_section=[2, 2, 4]),
    "talker_config": dict(embedding_size=96, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                          num_attention_heads=6, num_key_value_heads=3, head_dim=8),
    "talker_config.rope_parameters": dict(mrope_section=[1, 1, 2]),
    "token2wav_config.dit_config": dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=3, head_dim=16,
                                        look_ahead_layers=[0], look_backward_layers=[1], block_size=16),
    "token2wav_config.bigvgan_config": dict(upsample_initial_channel=96, upsample_rates=[5, 4, 3, 2, 2, 2],
                                            upsample_kernel_sizes=[11, 8, 6, 4, 4, 4]),
}

SPEAKERS = {"Chelsie": 151870, "Ethan": 151871}


def config_dict(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """BASE with `overrides` merged per sub-config, e.g. {"talker_config": {"head_dim": 8}} (or VARIANT)."""
    return with_overrides(BASE, overrides)


def build_model(overrides: dict[str, dict[str, Any]] | None = None, seed: int = 0):
    """A random transformers Qwen2.5-Omni model in float32 (eager attention where it has a choice), speakers set."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    torch.manual_seed(seed)
    config = Qwen2_5OmniConfig(**config_dict(overrides), enable_audio_output=True)
    config._attn_implementation = "eager"
    model = Qwen2_5OmniForConditionalGeneration(config).eval()
    enc_emb = config.token2wav_config.dit_config.enc_emb_dim
    mel = config.token2wav_config.dit_config.mel_dim
    g = torch.Generator().manual_seed(seed + 1)
    model.speaker_map = {name: {"bos_token": bos, "cond": torch.randn(1, enc_emb, generator=g),
                                "ref_mel": torch.randn(1, 100, mel, generator=g)} for name, bos in SPEAKERS.items()}
    return model


def save_checkpoint(model, path: Path) -> Path:
    """The model in the released on-disk layout: config.json, safetensors weights and spk_dict.pt."""
    model.save_pretrained(path)
    torch.save(model.speaker_map, Path(path) / "spk_dict.pt")
    return path


def load_model(path: Path):
    """A checkpoint folder loaded by transformers (float32, eager attention where it has a choice)."""
    from transformers import Qwen2_5OmniForConditionalGeneration

    return Qwen2_5OmniForConditionalGeneration.from_pretrained(
        path, torch_dtype=torch.float32, attn_implementation="eager").eval()
