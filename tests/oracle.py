"""The transformers oracle (test-only): tiny Qwen3-Omni configs, models and saved checkpoints.

Configs follow shared/reference/qwen3-omni.md section 12 (real special-token ids, 152064-token vocabulary);
`overrides` vary sizes per test so parity is checked on odd shapes, not one lucky configuration.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from config_overrides import with_overrides

TOKENS = dict(audio_token_id=151675, image_token_id=151655, video_token_id=151656, audio_start_token_id=151669,
              audio_end_token_id=151670, vision_start_token_id=151652, vision_end_token_id=151653)

BASE: dict[str, Any] = {
    "thinker_config": {
        "audio_config": dict(num_mel_bins=128, d_model=32, encoder_layers=2, encoder_attention_heads=4,
                             encoder_ffn_dim=64, output_dim=64, n_window=50, n_window_infer=800,
                             conv_chunksize=500, downsample_hidden_size=16, max_source_positions=1500),
        "vision_config": dict(depth=3, hidden_size=32, intermediate_size=64, num_heads=4, in_channels=3,
                              patch_size=16, temporal_patch_size=2, spatial_merge_size=2, out_hidden_size=64,
                              num_position_embeddings=64, deepstack_visual_indexes=[0, 1],
                              hidden_act="gelu_pytorch_tanh"),
        "text_config": dict(vocab_size=152064, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=32, moe_intermediate_size=32,
                            num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
                            mlp_only_layers=[], max_position_embeddings=4096, rms_norm_eps=1e-6,
                            rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[4, 6, 6],
                                                 interleaved=True)),
        **TOKENS, "position_id_per_seconds": 13, "seconds_per_chunk": 2, "user_token_id": 872,
    },
    "talker_config": {
        "text_config": dict(vocab_size=3072, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=16, moe_intermediate_size=16,
                            num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
                            shared_expert_intermediate_size=32, decoder_sparse_step=1, mlp_only_layers=[],
                            max_position_embeddings=4096,
                            rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[2, 3, 3],
                                                 interleaved=True)),
        "code_predictor_config": dict(vocab_size=2048, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_code_groups=4,
                                      rope_parameters=dict(rope_type="default", rope_theta=1e6)),
        "num_code_groups": 4, "thinker_hidden_size": 64, "accept_hidden_layer": 2,
        "codec_bos_id": 2149, "codec_eos_token_id": 2150, "codec_pad_id": 2148, "codec_nothink_id": 2155,
        "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
        "audio_token_id": 151675, "image_token_id": 151655, "video_token_id": 151656,
        "vision_start_token_id": 151652, "audio_start_token_id": 151669, "position_id_per_seconds": 13,
        "spatial_merge_size": 2, "speaker_id": {"chelsie": 2301, "ethan": 2302, "aiden": 2303},
    },
    "code2wav_config": dict(codebook_size=2048, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=4, intermediate_size=64, sliding_window=72, num_quantizers=4,
                            upsample_rates=[8, 5, 4, 3], upsampling_ratios=[2, 2], decoder_dim=64,
                            rms_norm_eps=1e-5, layer_scale_initial_scale=0.01, max_position_embeddings=8000,
                            rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
    "enable_audio_output": True,
}


def config_dict(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """BASE with `overrides` merged per sub-config, e.g. {"thinker_config.text_config": {"head_dim": 24}}."""
    return with_overrides(BASE, overrides)


def build_model(overrides: dict[str, dict[str, Any]] | None = None, seed: int = 0):
    """A random transformers Qwen3-Omni model in float32 with eager attention."""
    from transformers import Qwen3OmniMoeConfig, Qwen3OmniMoeForConditionalGeneration

    torch.manual_seed(seed)
    config = Qwen3OmniMoeConfig(**config_dict(overrides))
    config._attn_implementation = "eager"
    model = Qwen3OmniMoeForConditionalGeneration(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # transformers 5.23 leaves the Talker's fused expert weights uninitialised
        for name, param in model.talker.named_parameters():
            if ".experts." in name:
                param.copy_(torch.randn(param.shape, generator=g) * 0.1)
    return model


def save_checkpoint(model, path: Path) -> Path:
    model.save_pretrained(path)
    return path


def load_model(path: Path):
    """A checkpoint folder loaded by transformers (float32, eager attention)."""
    from transformers import Qwen3OmniMoeForConditionalGeneration

    return Qwen3OmniMoeForConditionalGeneration.from_pretrained(
        path, torch_dtype=torch.float32, attn_implementation="eager").eval()


def generate_speech(model, thinker_tokens: int, talker_tokens: int, **inputs):
    """Greedy top-level generate(return_audio=True) -> (the Thinker's new ids, frames x codes, waveform [N]).

    The codes are read from the talker's own generate (the top-level call returns only the waveform).
    """
    captured = {}
    original = model.talker.generate

    def spy(*args, **kwargs):
        captured["out"] = out = original(*args, **kwargs)
        return out

    model.talker.generate = spy
    try:
        with torch.no_grad():
            seq, wav = model.generate(**inputs, return_audio=True, thinker_do_sample=False, talker_do_sample=False,
                                      thinker_max_new_tokens=thinker_tokens, talker_max_new_tokens=talker_tokens)
    finally:
        del model.talker.generate
    frames = [tuple(step[1].reshape(-1).tolist()) for step in captured["out"].hidden_states if step[1] is not None]
    return seq[0, inputs["input_ids"].shape[1]:].tolist(), frames, wav.reshape(-1)


def video_with_audio_inputs(ckpt, clip: Path) -> dict[str, Any]:
    """transformers' Thinker inputs for a video file and its audio track (use_audio_in_video), preprocessed as the
    checkpoint `ckpt` (an omnigraph Checkpoint) says."""
    from transformers import WhisperFeatureExtractor

    from omnigraph.nodes.common.vision_preprocess import PreprocessArgs, preprocess_video
    from omnigraph.runtime.payloads import FilePath
    from omnigraph.testing import run_node

    vision = ckpt.config["thinker_config"]["vision_config"]
    video = run_node("media_decode", {"path": FilePath(str(clip))}, {"expect": "video"})["video"]
    args = PreprocessArgs.from_files(ckpt.json_file("preprocessor_config.json"),
                                     ckpt.json_file("video_preprocessor_config.json"), vision["patch_size"],
                                     vision["temporal_patch_size"], vision["spatial_merge_size"])
    pixels, grid = preprocess_video(video.frames, args)
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400,
                                        chunk_length=300, return_attention_mask=True)
    features = extractor([video.audio.samples.numpy()], sampling_rate=16000, padding=True, truncation=False,
                         return_attention_mask=True, return_tensors="pt")
    return {"input_features": features["input_features"], "feature_attention_mask": features["attention_mask"],
            "pixel_values_videos": pixels, "video_grid_thw": torch.tensor([grid]),
            "video_second_per_grid": torch.tensor([args.temporal_patch_size / video.fps]), "use_audio_in_video": True}
