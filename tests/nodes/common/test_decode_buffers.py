"""Decode state sized by what is generated: a growing token history."""
import torch

from omnigraph.nodes.common.decode_buffers import CHUNK, TokenHistory


def test_token_history_keeps_the_prompt_and_grows_by_doubling():
    history = TokenHistory("cpu", torch.arange(3))
    for t in range(3, 3 * CHUNK):
        history.append(torch.tensor([t]))
    assert history.view().tolist() == [list(range(3 * CHUNK))]
    assert history.ids.shape[1] == 4 * CHUNK
