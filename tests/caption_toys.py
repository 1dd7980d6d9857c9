"""A test-only node kind for the Ray caption tests, importable by Ray actors (tests/ is on their PYTHONPATH)."""
from __future__ import annotations

import os
from typing import Any

from omnigraph.runtime.node import Node, NodeConfig
from omnigraph.runtime.payloads import Waveform
from omnigraph.runtime.ports import Input, Output


class CrashOnLength(Node):
    """Passes audio through, but ends its whole process (as a segfault or the OOM killer would) on audio of
    `seconds` length."""

    kind = "test_caption_crash"

    class Config(NodeConfig):
        seconds: float = 2.5

    inputs = (Input("audio", Waveform),)
    outputs = (Output("audio", Waveform),)

    def process(self, audio: Waveform) -> dict[str, Any]:
        if abs(audio.seconds - self.config.seconds) < 0.01:
            os._exit(1)
        return {"audio": audio}
