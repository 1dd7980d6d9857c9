"""Cutting audio into windows: all of it, none longer than the limit, on a pause when one is near."""
from __future__ import annotations

import numpy as np
import pytest

from caption_media import speechlike
from omnigraph.caption.windows import cut_windows

RATE = 16000


def check_tiling(windows, n: int, limit: float) -> None:
    assert windows[0].first == 0 and windows[-1].last == n
    assert all(a.last == b.first for a, b in zip(windows, windows[1:]))
    assert all(0 < w.end - w.start <= limit for w in windows)


@pytest.mark.parametrize("seconds, count", [(0.5, 1), (30.0, 1), (30.01, 2), (61.0, 3), (95.0, 4)])
def test_windows_cover_everything_and_none_is_longer_than_the_limit(seconds, count):
    x = speechlike(seconds, RATE, 0)
    windows = cut_windows(x, RATE, 30.0)
    check_tiling(windows, len(x), 30.0)
    assert len(windows) == count
    assert [w.index for w in windows] == list(range(count))


def test_without_a_pause_a_file_is_cut_into_even_shares():
    windows = cut_windows(speechlike(95.0, RATE, 1), RATE, 30.0)
    assert [round(w.end - w.start, 2) for w in windows] == [23.75] * 4


def test_a_cut_moves_to_a_pause_near_the_boundary():
    x = speechlike(70.0, RATE, 2, pause_at=26.0)  # even shares would cut at 23.3 s; the pause is 2.7 s later
    windows = cut_windows(x, RATE, 30.0)
    check_tiling(windows, len(x), 30.0)
    assert 26.0 < windows[0].end < 26.6


def test_a_pause_past_the_limit_is_not_used_and_empty_audio_has_no_window():
    x = speechlike(50.0, RATE, 3, pause_at=31.0)
    check_tiling(cut_windows(x, RATE, 30.0), len(x), 30.0)
    assert cut_windows(np.zeros(0, np.float32), RATE, 30.0) == []
    silent = cut_windows(np.zeros(RATE * 65, np.float32), RATE, 30.0)
    check_tiling(silent, RATE * 65, 30.0)
