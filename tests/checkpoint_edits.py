"""Variants of a saved tiny checkpoint for error-path tests (test-only)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable


def with_config_edit(path: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the checkpoint at `path` in `dst` whose config.json is changed in place by `edit`."""
    shutil.copytree(path, dst)
    config = json.loads((dst / "config.json").read_text())
    edit(config)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def with_json_file(path: Path, dst: Path, name: str, content: dict[str, Any]) -> Path:
    """The checkpoint at `path` linked file by file into `dst`, plus the JSON file `name` (e.g.
    preprocessor_config.json)."""
    dst.mkdir()
    for f in path.iterdir():
        (dst / f.name).symlink_to(f)
    (dst / name).write_text(json.dumps(content))
    return dst


def with_config_overrides(path: Path, dst: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """The checkpoint at `path` linked file by file into `dst`, its config.json (a new file) with `overrides`
    merged by dotted path (config_overrides.with_overrides)."""
    from config_overrides import with_overrides

    dst.mkdir()
    for f in path.iterdir():
        if f.name != "config.json":
            (dst / f.name).symlink_to(f)
    config = with_overrides(json.loads((path / "config.json").read_text()), overrides)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def check_problems(node: Any, path: Path) -> tuple[list[str], int]:
    """The problems `node.check_checkpoint` reports for the checkpoint at `path`, and how many keys fit."""
    from omnigraph.runtime.checkpoint_check import CheckpointProbe

    probe = CheckpointProbe.open(path)
    node.check_checkpoint(probe)
    return probe.problems, len(probe.fitting)
