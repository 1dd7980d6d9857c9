"""The Thinker -> Talker contract is typed: no free-form dicts read by string keys."""
from __future__ import annotations

import dataclasses

import pytest

from omnigraph.nodes.qwen import payloads


@pytest.mark.parametrize("cls", [payloads.PromptTokens, payloads.ThinkerPrompt, payloads.TalkerContext,
                                 payloads.MediaLayout])
def test_fields_are_typed(cls) -> None:
    loose = {f.name: f.type for f in dataclasses.fields(cls) if "dict" in str(f.type) or "Any" in str(f.type)}
    assert not loose


def test_media_layout_says_whether_a_prompt_has_media() -> None:
    assert not payloads.MediaLayout().has_media
    assert payloads.MediaLayout(image_grids=((1, 4, 4),)).has_media
