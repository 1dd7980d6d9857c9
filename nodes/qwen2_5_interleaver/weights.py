"""The only tensor this node reads: the Thinker's token embedding table `thinker.model.embed_tokens.weight`."""
from __future__ import annotations

from typing import Any

from ..common.key_table import EMBED, KeyTable


def key_table(config: dict[str, Any], prefix: str = "thinker.model.embed_tokens.") -> KeyTable:
    """The [V, C] embedding table; its shape comes from thinker_config.text_config of the FULL config.json."""
    text = config["thinker_config"]["text_config"]
    table = KeyTable(prefix)
    table.add("weight", (text["vocab_size"], text["hidden_size"]), EMBED, "embed")
    return table


def load_embed_table(checkpoint: Any, prefix: str = "thinker.model.embed_tokens.", dtype: Any = None,
                     device: str = "cpu"):
    """[V, C] embedding table of the checkpoint."""
    return key_table(checkpoint.config, prefix).load(checkpoint, dtype=dtype, device=device)["embed"]
