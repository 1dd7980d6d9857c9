"""The Thinker's token embedding table `<root>model.embed_tokens.weight`, read by the interleaver (prompt
embeddings) and the Talker (text embeddings of the reply). The Thinker's key table writes it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..common.key_table import EMBED, KeyTable

if TYPE_CHECKING:
    import torch


def key_table(config: dict[str, Any], root: str = "thinker.") -> KeyTable:
    """The one borrowed key, its shape [V, C] from the thinker text config (full config.json dict or a section)."""
    c = config.get("thinker_config", config)
    c = c.get("text_config", c)
    table = KeyTable(f"{root}model.embed_tokens.")
    table.add("weight", (c["vocab_size"], c["hidden_size"]), EMBED, borrowed=True)
    return table


def load_embed_table(checkpoint: Any, root: str = "thinker.", dtype: torch.dtype | None = None,
                     device: str = "cpu") -> torch.Tensor:
    """[V, C] embedding table."""
    return key_table(checkpoint.config, root).load(checkpoint, dtype=dtype, device=device)["weight"]
