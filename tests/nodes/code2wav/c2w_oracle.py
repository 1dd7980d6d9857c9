"""Tiny transformers Code2Wav models with every parameter randomised to lively values, saved as checkpoints."""
from __future__ import annotations

from pathlib import Path

import torch

from oracle import build_model, save_checkpoint


def randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Default init leaves LayerScale at 0.01, gamma at 1e-6, SnakeBeta at 0 and biases at 0; give every
    parameter a value that makes its part of the network matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith((".alpha", ".beta")):
                p.copy_(0.3 * noise)  # log-space SnakeBeta: e^alpha, e^beta around 1
            elif name.endswith(("scale", "gamma")) or "norm" in name:
                p.copy_(1.0 + 0.3 * noise if "norm" in name else 0.5 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif p.dim() >= 2:
                fan_in = 1 if "code_embedding" in name else p[0].numel()
                gain = 0.5 if ".block." in name and ".conv" in name else 1.0  # keep the decoder's residual
                p.copy_(gain * noise / fan_in ** 0.5)                           # stream near unit scale


def build_code2wav(folder: Path, overrides: dict | None = None, seed: int = 0, clip: bool = False):
    """(transformers code2wav module, checkpoint folder) for code2wav_config overrides. clip: shift the output
    so that some samples pass 1 and the final clamp matters. The Talker makes as many code groups as Code2Wav
    decodes (loading the node checks it)."""
    overrides = overrides or {}
    groups = {"num_code_groups": overrides["num_quantizers"]} if "num_quantizers" in overrides else {}
    model = build_model({"code2wav_config": overrides, "talker_config": groups,
                         "talker_config.code_predictor_config": groups}, seed=seed)
    randomise(model.code2wav, seed)
    if clip:
        with torch.no_grad():
            model.code2wav.decoder[-1].conv.bias.fill_(0.8)
    save_checkpoint(model, folder)
    return model.code2wav, folder
