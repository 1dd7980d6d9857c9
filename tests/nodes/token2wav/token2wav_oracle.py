"""The token2wav tests' oracle: a random transformers Qwen2.5-Omni model with its token2wav biases, norms and
SnakeBeta parameters drawn at random (not 0), saved in the released layout."""
from __future__ import annotations

import torch
from oracle25 import build_model, save_checkpoint


def perturbed_token2wav(overrides=None, seed: int = 0):
    model = build_model(overrides, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in model.token2wav.named_parameters():
            if name.rsplit(".", 1)[-1] in ("bias", "alpha", "beta"):
                p.copy_(torch.rand(p.shape, generator=g) - 0.5)
    return model


def random_codes(n: int, seed: int = 1) -> torch.Tensor:
    """[1, n] acoustic codes."""
    return torch.randint(0, 8192, (1, n), generator=torch.Generator().manual_seed(seed))


__all__ = ["perturbed_token2wav", "random_codes", "save_checkpoint"]
