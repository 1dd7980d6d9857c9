"""Which checkpoints the Qwen2.5-Omni node kinds read: config.json's thinker_config.model_type says the family."""
from __future__ import annotations

from typing import Any

from ...runtime.errors import UserError

THINKER_MODEL_TYPE = "qwen2_5_omni_thinker"


def require_qwen2_5(checkpoint: Any, node: str, kind: str) -> None:
    """A checkpoint of another family (e.g. Qwen3-Omni's) is a user error naming both; one that does not say
    (no model_type) is taken as it is."""
    found = (checkpoint.config.get("thinker_config") or {}).get("model_type")
    if found is not None and found != THINKER_MODEL_TYPE:
        raise UserError(f"node '{node}' ({kind}): {checkpoint.path / 'config.json'} is a '{found}' checkpoint, but "
                        f"{kind} reads Qwen2.5-Omni ones (thinker_config.model_type '{THINKER_MODEL_TYPE}'): use "
                        f"the node kinds of that family, or a Qwen2.5-Omni checkpoint")
