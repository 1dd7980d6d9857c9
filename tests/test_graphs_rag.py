"""The retrieval graphs: text_rag answers from the shipped corpus; rag_omni and rag_speak run on the tiny
checkpoint with the passages where they belong."""
from __future__ import annotations

import pytest

from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
from omnigraph.runtime.validate import load_graph
from omnigraph.testing import run_graph


@pytest.mark.parametrize("name", ["text_rag", "rag_omni", "rag_speak"])
def test_rag_graphs_validate(name: str) -> None:
    assert "passages" in load_graph(name).outputs


def test_text_rag_answers_from_the_right_passage() -> None:
    result = run_graph("text_rag", {"text": "What is the default max_batch of the Thinker?"})
    assert result.outputs["passages"].items[0].source == "batching.md"
    assert "16" in "".join(piece.text for piece in result.outputs["text"])


def test_rag_speak_speaks_the_top_passage_and_rag_omni_prompts_with_passages() -> None:
    checkpoint = Checkpoint.open(default_checkpoint())
    overrides = {("thinker", "max_new_tokens"): 4, ("talker", "max_frames"): 6}
    spoken = run_graph("rag_speak", {"text": "How do I pick another voice?"}, checkpoint=checkpoint,
                       overrides=overrides)
    assert spoken.outputs["passages"].items[0].source == "talker_speech.md"
    assert spoken.outputs["spoken_text"].text.startswith("Here is what I found. Speech output: Talker")
    assert spoken.outputs["audio"] is not None
    grounded = run_graph("rag_omni", {"text": "How do I pick another voice?"}, checkpoint=checkpoint,
                         overrides=overrides)
    from omnigraph.nodes.qwen.tokenizer import QwenTokenizer

    prompt = QwenTokenizer.from_dir(default_checkpoint()).decode(grounded.outputs["prompt_token_ids"].ids)
    assert "[1] (talker_speech.md)" in prompt and "Question: How do I pick another voice?" in prompt
