"""Shared helpers of the Talker tests: oracle models with perturbed norms and biases, configs, oracle codes."""
from __future__ import annotations

import torch
from oracle import build_model, generate_speech, save_checkpoint

IM_START, IM_END, NL, USER, ASSISTANT = 151644, 151645, 198, 872, 77091
AUDIO, A_START, A_END = 151675, 151669, 151670
WORDS = [74785, 279, 9104, 304, 12095, 3351, 11, 26753, 13]
SYSTEM = [IM_START, 8948, NL, 2610, 525, 1207, 16948, IM_END, NL]
CHAT = [*SYSTEM, IM_START, USER, NL, *WORDS, IM_END, NL, IM_START, ASSISTANT, NL]

# (thinker layers, accept_hidden_layer, talker text overrides, code groups)
CONFIGS = {
    "base": (2, 2, {}, 4),
    "wide": (3, 3, dict(head_dim=24, num_experts=6, num_attention_heads=2, num_key_value_heads=1,
                        rope_parameters=dict(rope_type="default", rope_theta=1e6, mrope_section=[4, 4, 4],
                                             interleaved=True)), 5),
}


def overrides(name: str) -> dict:
    layers, accept, talker_text, groups = CONFIGS[name]
    return {"thinker_config.text_config": {"num_hidden_layers": layers},
            "talker_config": {"accept_hidden_layer": accept, "num_code_groups": groups},
            "talker_config.text_config": talker_text,
            "talker_config.code_predictor_config": {"num_code_groups": groups},
            "code2wav_config": {"num_quantizers": groups}}


def saved_omni(name: str, path, seed: int = 0):
    """A random oracle whose Thinker norms and Talker norms/biases are not defaults, saved to path."""
    model = build_model(overrides(name), seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        params = [*model.thinker.model.named_parameters(),
                  *(("talker." + n, p) for n, p in model.talker.named_parameters())]
        for n, p in params:
            if "norm" in n or "bias" in n:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif ".experts." in n and n.startswith("talker."):  # transformers 5.23 leaves these uninitialised
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.talker.config.audio_config = model.config.thinker_config.audio_config  # the v5.23 workaround (§9)
    save_checkpoint(model, path)
    return model


def oracle_codes(model, thinker_tokens: int, talker_tokens: int, **inputs) -> tuple[list[int], list[tuple]]:
    """Greedy top-level generate(return_audio=True): (thinker's generated ids, the talker's frames x codes)."""
    ids, codes, _ = generate_speech(model, thinker_tokens, talker_tokens, **inputs)
    return ids, codes
