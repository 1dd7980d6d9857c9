"""Special token ids are read from the checkpoint in one place (nodes/qwen/special_tokens.py)."""
from __future__ import annotations

from types import SimpleNamespace

from omnigraph.nodes.qwen.special_tokens import RELEASED, media_token_ids, token_id
from omnigraph.nodes.qwen3.checkpoint_configs import preset_config
from omnigraph.nodes.talker.prompt import TalkerIds
from omnigraph.nodes.text_context.node import TextContext


def test_an_id_comes_from_the_config_else_the_release() -> None:
    assert token_id({"im_start_token_id": 7}, "im_start_token_id") == 7
    assert token_id({}, "im_start_token_id") == token_id({"im_start_token_id": None}, "im_start_token_id") == 151644


def test_media_ids_of_a_whole_config_use_its_thinker_config() -> None:
    ids = media_token_ids({"thinker_config": {"audio_token_id": 5, "position_id_per_seconds": 25,
                                              "vision_config": {"spatial_merge_size": 3}}})
    assert (ids.audio, ids.image, ids.position_id_per_seconds, ids.spatial_merge_size) == (5, 151655, 25, 3)


def test_talker_ids_read_the_top_level_and_talker_config() -> None:
    ids = TalkerIds.from_hf_config({"assistant_token_id": 9, "talker_config": {"codec_bos_id": 11}})
    assert (ids.assistant, ids.codec_bos, ids.im_start, ids.codec_eos) == (9, 11, 151644, 2150)


def test_text_context_reads_the_turn_ids_of_its_checkpoint() -> None:
    node = TextContext()
    node.load("cpu", SimpleNamespace(config={"im_start_token_id": 3, "user_token_id": 4}))
    assert node._turn_ids == (3, 4)


def test_the_tiny_checkpoint_writes_the_released_ids() -> None:
    config = preset_config("tiny")
    sections = [config, config["thinker_config"], config["talker_config"]]
    written = {k: v for section in sections for k, v in section.items() if k in RELEASED}
    assert written == {k: RELEASED[k] for k in written} and set(written) == set(RELEASED)
