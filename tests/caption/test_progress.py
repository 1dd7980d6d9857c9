"""The job's progress: a bar with files, ETA and figures on a terminal; plain lines otherwise."""
from __future__ import annotations

import io

from omnigraph.caption.progress import Progress
from omnigraph.caption.summary import Tally

RECORD = {"status": "ok", "windows": [{"tokens": 5}], "audio_seconds": 36.0,
          "timings": {"decode_s": 0.1, "nodes": {"thinker": 1.0}}}
ERROR = {"status": "error", "windows": [], "audio_seconds": None, "timings": {"decode_s": 0.0, "nodes": {}}}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_eta_audio_hours_tokens_and_errors():
    stream, tally = Terminal(), Tally(total=4)
    progress = Progress(tally, stream)
    for record in (RECORD, ERROR):
        tally.add(record)
        progress.update()
    progress.close()
    text = stream.getvalue()
    assert "2/4" in text and "<" in text  # files done of all, elapsed<remaining
    assert "1 windows, 0.010 audio-h" in text and "tok/s" in text and "1 errors" in text


def test_elsewhere_plain_lines_and_a_last_one():
    stream, tally = io.StringIO(), Tally(total=2)
    progress = Progress(tally, stream)
    tally.add(RECORD)
    progress.update()  # within PLAIN_EVERY of the start: no line yet
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("caption: 1/2 files, 1 windows")
