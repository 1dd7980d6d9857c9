"""The special token ids of a Qwen-Omni checkpoint, read from its config.json in one place.

An id is read under its config.json name from the dict given (the whole config.json, or its thinker_config or
talker_config); an id the checkpoint does not name takes its released Qwen3-Omni value, which is also what the
tiny-checkpoint writer writes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..common.mrope_positions import MediaTokenIds

RELEASED: dict[str, int] = {
    # the chat format (top level of config.json)
    "im_start_token_id": 151644, "im_end_token_id": 151645, "system_token_id": 8948, "user_token_id": 872,
    "assistant_token_id": 77091, "tts_pad_token_id": 151671, "tts_bos_token_id": 151672,
    "tts_eos_token_id": 151673,
    # media placeholders and their wrappers (thinker_config, talker_config)
    "audio_token_id": 151675, "image_token_id": 151655, "video_token_id": 151656,
    "audio_start_token_id": 151669, "audio_end_token_id": 151670, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    # the codec vocabulary's control ids (talker_config)
    "codec_pad_id": 2148, "codec_bos_id": 2149, "codec_eos_token_id": 2150, "codec_nothink_id": 2155,
    "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
}
NEWLINE = 198  # "\n" in the Qwen vocabulary (config.json does not name it)
MEDIA_NAMES = dict(audio="audio_token_id", image="image_token_id", video="video_token_id",
                   audio_start="audio_start_token_id", audio_end="audio_end_token_id",
                   vision_start="vision_start_token_id", vision_end="vision_end_token_id")


def token_id(config: Mapping[str, Any], name: str) -> int:
    """The id called `name` in `config`, else its released value."""
    value = config.get(name)
    return int(RELEASED[name] if value is None else value)


def media_token_ids(config: Mapping[str, Any]) -> MediaTokenIds:
    """Media ids and the seconds-to-position scale of a thinker_config or talker_config dict (a whole
    config.json dict uses its thinker_config)."""
    from ..common.mrope_positions import MediaTokenIds

    config = config.get("thinker_config", config)
    merge = config.get("spatial_merge_size", config.get("vision_config", {}).get("spatial_merge_size", 2))
    scale = config.get("position_id_per_seconds")
    return MediaTokenIds(**{ours: token_id(config, name) for ours, name in MEDIA_NAMES.items()},
                         spatial_merge_size=merge,
                         **({} if scale is None else {"position_id_per_seconds": scale}))
