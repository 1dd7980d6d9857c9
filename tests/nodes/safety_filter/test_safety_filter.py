"""safety_filter on token streams: redact / replace / block, minimal lookahead, untouched text untouched."""
from __future__ import annotations

import pytest

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
from omnigraph.nodes.common.token_payloads import TokenId
from omnigraph.nodes.qwen.tokenizer import QwenTokenizer
from omnigraph.testing import run_node


@pytest.fixture(scope="module")
def tokenizer() -> QwenTokenizer:
    return QwenTokenizer.from_dir(default_checkpoint())


def screen(tokenizer, text: str, **config) -> tuple[list[int], str]:
    ids = [TokenId(i) for i in tokenizer.encode(text)]
    out = run_node("safety_filter", {"tokens": ids}, config, checkpoint=Checkpoint.open(default_checkpoint()))
    got = [t.id for t in out["tokens"]]
    return got, tokenizer.decode(got)


def test_text_without_matches_passes_as_the_same_ids(tokenizer) -> None:
    text = "The weather in Paris is mild today.<|im_end|>"
    got, _ = screen(tokenizer, text, words=["secret"], patterns=[r"\d{4}-\d{4}"])
    assert got == tokenizer.encode(text)


@pytest.mark.parametrize("policy, expected", [
    ("redact", "My password is [redacted], and the code is [redacted] now."),
    ("replace", "My password is I'm sorry, I can't say that."),
    ("block", "My password is "),
])
def test_policies(tokenizer, policy: str, expected: str) -> None:
    text = "My password is Hunter2, and the code is 1234-5678 now."
    _, out = screen(tokenizer, text, words=["hunter2"], patterns=[r"\d{4}-\d{4}"], policy=policy)
    assert out == expected


def test_whole_words_only_and_matches_split_across_tokens(tokenizer) -> None:
    _, out = screen(tokenizer, "cats and a cat, concatenate cat", words=["cat"], mask="*")
    assert out == "cats and a *, concatenate *"
    _, out = screen(tokenizer, "Supercalifragilistic words", words=["supercalifragilistic"], mask="X")
    assert out == "X words"


def test_lookahead_is_only_what_a_partial_match_needs(tokenizer) -> None:
    import regex

    from omnigraph.nodes.safety_filter.screen import Screen

    pattern = regex.compile(r"(?<!\w)top secret(?!\w)", regex.IGNORECASE)
    screen_ = Screen(pattern, tokenizer, "redact", "#", "")
    tokens = tokenizer.encode("hello world top secret stuff")
    assert [tokenizer.decode([t]) for t in tokens] == ["hello", " world", " top", " secret", " stuff"]
    out, released = [], []
    for token in tokens:
        ids = screen_.push(token)
        released.append(len(ids))
        out += ids
    out += screen_.finish()
    # "hello" and " world" pass at once; " top" could start a match and " top secret" could still grow
    # ("top secrets"), so both wait; " stuff" settles it.
    assert released[:4] == [1, 1, 0, 0] and released[4] > 0
    assert tokenizer.decode(out) == "hello world # stuff"


def test_classifier_refuses_a_banned_topic_and_says_why(tokenizer) -> None:
    text = "The weather is mild today. Here is how to build a pipe bomb at home. Step one.<|im_end|>"
    ids = [TokenId(i) for i in tokenizer.encode(text)]
    config = {"topics": ["making explosives or weapons"], "threshold": 0.4, "refusal": "I can't help with that."}
    out = run_node("safety_filter", {"tokens": ids}, config, checkpoint=Checkpoint.open(default_checkpoint()))
    said = tokenizer.decode([t.id for t in out["tokens"]])
    assert said == "The weather is mild today. I can't help with that."
    assert "making explosives or weapons" in out["reason"].text and "pipe bomb" in out["reason"].text


def test_classifier_passes_harmless_text_unchanged(tokenizer) -> None:
    text = "Paris is the capital of France. It stands on the Seine.<|im_end|>"
    got, _ = screen(tokenizer, text, topics=["making explosives or weapons"], threshold=0.4)
    assert got == tokenizer.encode(text)
