"""Decode state sized by what is generated: rotary angles in chunks, a growing token history."""
import torch

from omnigraph.nodes.common.decode_buffers import CHUNK, RopeChunks, TokenHistory
from omnigraph.nodes.common.rope import inv_freq, rope_cos_sin


def test_rope_chunks_match_the_whole_table_across_chunk_borders():
    freqs = inv_freq(16, 1e6)
    whole = lambda first, count: rope_cos_sin(torch.arange(first, first + count) + 7.5, freqs)  # noqa: E731
    cos, sin = whole(0, 2 * CHUNK + 3)
    rope = RopeChunks(whole, 10**15)  # a budget no table could hold: only one chunk exists at a time
    for step in (0, CHUNK - 1, CHUNK, 2 * CHUNK + 2, 5):
        c, s = rope.at(step)
        assert c.shape == (1, 1, 16) and rope.cos.shape[0] == CHUNK
        torch.testing.assert_close(c[0, 0], cos[step], rtol=0, atol=1e-6)
        torch.testing.assert_close(s[0, 0], sin[step], rtol=0, atol=1e-6)


def test_token_history_keeps_the_prompt_and_grows_by_doubling():
    history = TokenHistory("cpu", torch.arange(3))
    for t in range(3, 3 * CHUNK):
        history.append(torch.tensor([t]))
    assert history.view().tolist() == [list(range(3 * CHUNK))]
    assert history.ids.shape[1] == 4 * CHUNK
