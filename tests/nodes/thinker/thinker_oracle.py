"""Shared helpers of the Thinker tests: oracle models with perturbed norms, saved as checkpoints."""
from __future__ import annotations

import torch
from oracle import build_model, save_checkpoint

# "<|im_start|>user\nDescribe the weather in Paris today, briefly.<|im_end|>\n<|im_start|>assistant\n"
WORDS = [74785, 279, 9104, 304, 12095, 3351, 11, 26753, 13]
CHAT = [151644, 872, 198, *WORDS, 151645, 198, 151644, 77091, 198]


def with_width(hidden: int, text: dict, accept_hidden_layer: int) -> dict:
    """Overrides that give the Thinker `text` settings and keep the encoders' output widths equal to it."""
    return {"thinker_config.text_config": {"hidden_size": hidden, **text},
            "thinker_config.audio_config": {"output_dim": hidden},
            "thinker_config.vision_config": {"out_hidden_size": hidden},
            "talker_config": {"thinker_hidden_size": hidden, "accept_hidden_layer": accept_hidden_layer}}


def saved_oracle(overrides: dict, path, seed: int = 0):
    """A random oracle model whose Thinker norms are not all ones (so a missing weight shows), saved to path."""
    model = build_model(overrides, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in model.thinker.model.named_parameters():
            if "norm" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    save_checkpoint(model, path)
    return model
