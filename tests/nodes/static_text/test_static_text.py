"""static_text: a string as Thinker-vocabulary token ids, ending like a Thinker's reply."""
from __future__ import annotations

import pytest

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.payloads import Text
from omnigraph.nodes.qwen.tokenizer import QwenTokenizer
from omnigraph.testing import run_node


def test_text_becomes_token_ids_then_im_end() -> None:
    checkpoint = Checkpoint.open(default_checkpoint())
    tokenizer = QwenTokenizer.from_dir(checkpoint.path)
    out = run_node("static_text", {"text": Text("Hello, 世界!")}, checkpoint=checkpoint)
    ids = [t.id for t in out["tokens"]]
    assert ids == tokenizer.encode("Hello, 世界!") + [151645]
    config_only = run_node("static_text", {}, {"text": "Hi", "end_of_reply": False}, checkpoint=checkpoint)
    assert [t.id for t in config_only["tokens"]] == tokenizer.encode("Hi")


def test_no_text_is_a_user_error() -> None:
    with pytest.raises(NodeFailed) as info:
        run_node("static_text", {}, checkpoint=Checkpoint.open(default_checkpoint()))
    assert isinstance(info.value.error, UserError) and "has no text" in str(info.value)
