"""The only tensor this node reads: the Thinker's token embedding table `<root>model.embed_tokens.weight`."""
from __future__ import annotations

from typing import Any

import torch


def load_embed_table(checkpoint: Any, root: str = "thinker.", dtype: torch.dtype | None = None,
                     device: str = "cpu") -> torch.Tensor:
    """[V, C] embedding table; its shape comes from the thinker text config."""
    c = checkpoint.config.get("thinker_config", checkpoint.config)
    c = c.get("text_config", c)
    shape = (c["vocab_size"], c["hidden_size"])
    return checkpoint.load(root + "model.embed_tokens.", {"weight": shape}, dtype=dtype, device=device)["weight"]
