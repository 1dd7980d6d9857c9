"""O(1)-scale random parameters for oracle checkpoints (test-only)."""
from __future__ import annotations

import torch


def randomize_(module: torch.nn.Module, seed: int, norms: tuple[str, ...] = ("norm", "ln_post")) -> None:
    """Give every parameter O(1)-scale random values: the default init leaves biases at 0 and norms at 1,
    which would hide mix-ups of biases and norm weights. A parameter whose name contains one of `norms` is a
    norm's: weights near 1, biases near 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if any(n in name for n in norms):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * noise)
            elif p.ndim == 1:
                p.copy_(0.2 * noise)
            else:
                p.copy_(noise / p[0].numel() ** 0.5)
