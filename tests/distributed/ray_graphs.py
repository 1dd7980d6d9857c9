"""Graphs and inputs the Ray tests share (greedy and short, so both executors' outputs compare bit for bit)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch

from omnigraph.runtime.overrides import parse_overrides
from omnigraph.runtime.validate import load_graph

TESTS = Path(__file__).resolve().parents[1]
MEDIA = TESTS / "fixtures" / "media"
SETTINGS = ["*.greedy=true", "*.max_new_tokens=12", "*.max_frames=12"]


def graph(name: str, *more_settings: str):
    """A shipped graph with the shared settings and any more `--set` style overrides."""
    return load_graph(name, overrides=parse_overrides([*SETTINGS, *more_settings]))


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Ray gives an actor reserving one CPU one torch thread; local runs compared bit for bit must match it
    (a float sum split over another number of threads rounds differently)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
