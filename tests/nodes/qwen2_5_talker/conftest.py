"""The Talker node tests' checkpoint and Thinker run, built once for the node and batching tests."""
import pytest
from talker25_oracle import perturbed_model, save_checkpoint, thinker_run

from omnigraph.runtime.checkpoint import Checkpoint


@pytest.fixture(scope="session")
def setup(tmp_path_factory):
    """(checkpoint, a ThinkerRun of 5 tokens: 4 reply states)."""
    model = perturbed_model(seed=8)
    ckpt = Checkpoint.open(save_checkpoint(model, tmp_path_factory.mktemp("talker25n") / "ckpt"))
    return ckpt, thinker_run(model, n_tokens=5)
