"""decode_head.py: one decode head for every decoder model (text_llm here, the Thinkers in their batching tests)."""
import threading

import pytest
import torch

from omnigraph.nodes.common.decoder_args import DecoderArgs
from omnigraph.nodes.common.engine import BatchingEngine, GenerationRequest
from omnigraph.nodes.common.sampling import SamplingParams
from omnigraph.nodes.common.screened_head import screen_serves
from omnigraph.nodes.text_llm.batch_model import TextLMBatchModel
from omnigraph.nodes.text_llm.model import TextLM

V = 9000  # wide enough to screen (top_k.py MIN_WIDTH)


@pytest.fixture(scope="module")
def model() -> TextLM:
    torch.manual_seed(0)
    args = DecoderArgs(vocab_size=V, dim=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, rms_eps=1e-6,
                       rope_theta=1e4, mrope_section=(8, 0, 0), n_experts=0, top_k=0, moe_hidden=0,
                       norm_topk_prob=False, dense_hidden=64, sparse=(False,))
    m = TextLM(args).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    m.prepare()
    return m


class FullHead:
    """TextLM's batch model without `best_head`: every step computes the whole float32 head."""

    def __init__(self, model):
        self.inner = TextLMBatchModel(model)

    def __getattr__(self, name):
        if name == "best_head":
            raise AttributeError(name)
        return getattr(self.inner, name)


class CountingBest(TextLMBatchModel):
    rows = 0

    def best_head(self, hidden, ks):
        self.rows += len(ks)
        return super().best_head(hidden, ks)


def test_text_llm_rows_read_the_embeddings_and_get_the_full_heads_tokens(model):
    head = model.decode_head()
    if not screen_serves(head.full.weight):
        pytest.skip("no screen on this CPU")
    assert head.screen.rows.data_ptr() == model.embed_tokens.weight.data_ptr()  # no float32 copy of the head

    def tokens(batch_model):
        engine = BatchingEngine(batch_model, max_batch=4)
        params = (SamplingParams(greedy=True), SamplingParams(temperature=0.9, top_k=20, top_p=0.8))
        streams = [engine.submit(GenerationRequest(
            prompt_len=n, max_new_tokens=6, params=params[n % 2], generator=torch.Generator().manual_seed(n),
            stop_ids=frozenset(), cancelled=threading.Event(), state=torch.arange(n)[None] * 7 + 3))
            for n in (3, 5, 8)]
        return [list(s) for s in streams]

    screened = CountingBest(model)
    assert tokens(screened) == tokens(FullHead(model)) and screened.rows == 3 * 6  # every step screened
    assert head.full.packed is None  # screened steps never made the packed float32 copy
