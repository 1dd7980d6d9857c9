"""Where omnigraph caches what it builds once (random checkpoints, search indexes)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where built checkpoints are cached: $OMNIGRAPH_CACHE, else $XDG_CACHE_HOME/omnigraph or ~/.cache/omnigraph."""
    if os.environ.get("OMNIGRAPH_CACHE"):
        return Path(os.environ["OMNIGRAPH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "omnigraph"
