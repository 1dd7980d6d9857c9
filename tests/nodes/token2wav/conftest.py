"""The token2wav node tests' checkpoint, written once for the node and batching tests."""
import pytest
from token2wav_oracle import perturbed_token2wav, save_checkpoint

from omnigraph.runtime.checkpoint import Checkpoint


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    return Checkpoint.open(save_checkpoint(perturbed_token2wav(seed=6), tmp_path_factory.mktemp("t2w") / "ckpt"))
