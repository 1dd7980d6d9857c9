"""A graph whose stages need resources that different cluster nodes offer runs across those nodes (a three-node
cluster simulated with `ray.cluster_utils`, in its own process so it does not meet the session's Ray instance)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("multinode_check.py")


@pytest.mark.timeout(600)
def test_stages_land_on_the_nodes_offering_their_resources(tmp_path) -> None:
    pytest.importorskip("ray")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=tmp_path, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    offers, placed = summary["offers"], summary["stage_nodes"]
    assert placed["speech"] == offers["speech_host"] and placed["vocoder"] == offers["vocoder_host"]
    assert len({placed["default"], placed["speech"], placed["vocoder"]}) == 3  # head, and one node per resource
    assert summary["stats_nodes"]["talker"] == summary["stats_nodes"]["code_predictor"] == offers["speech_host"]
    assert summary["stats_nodes"]["code2wav"] == offers["vocoder_host"]
    assert summary["codes_same"] and summary["audio_same"] and summary["frames"] == 10  # same as the local run
