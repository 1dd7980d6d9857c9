"""prompt: ChatML ids with one placeholder per media item, checked against transformers' AutoTokenizer applying
the checkpoint's chat template (the Qwen3OmniMoeProcessor needs torchvision for its video processor, which is
not installed, so it cannot be loaded here)."""
from __future__ import annotations

import pytest
import torch

from omnigraph.nodes.qwen3.checkpoint_writer import default_checkpoint
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.nodes.common.media_payloads import Image, MediaItem, Video
from omnigraph.runtime.payloads import Text, Waveform
from omnigraph.testing import run_node

IM_START, IM_END, NL, USER, ASSISTANT, SYSTEM = 151644, 151645, 198, 872, 77091, 8948
AUDIO = [151669, 151675, 151670]
IMAGE = [151652, 151655, 151653]
VIDEO = [151652, 151656, 151653]
GENERATION = [IM_END, NL, IM_START, ASSISTANT, NL]


@pytest.fixture(scope="module")
def ckpt():
    return default_checkpoint()  # tiny, seed 0: written once per machine, as `omnigraph run` uses it


@pytest.fixture(scope="module")
def hf_tokenizer(ckpt):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ckpt)


def wave(seconds: float = 0.5, value: float = 0.1) -> Waveform:
    return Waveform(torch.full((int(16000 * seconds),), value), 16000)


def image() -> Image:
    return Image(torch.zeros(32, 32, 3, dtype=torch.uint8))


def video(with_audio: bool) -> Video:
    return Video(torch.zeros(4, 32, 32, 3, dtype=torch.uint8), fps=2.0,
                 audio=wave(2.0, 0.2) if with_audio else None)


def prompt(ckpt, config=None, **inputs):
    return run_node("prompt", inputs, config or {}, checkpoint=ckpt)["prompt"]


def test_text_only_matches_transformers_chat_template(ckpt, hf_tokenizer):
    text = "Hello there, 你好 🎉! What's 2+2?"
    out = prompt(ckpt, text=Text(text))
    messages = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    expected = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=False)
    assert out.ids.dtype == torch.long and out.ids.tolist() == list(expected)
    body = hf_tokenizer.encode(text, add_special_tokens=False)
    assert out.ids.tolist() == [IM_START, USER, NL] + body + GENERATION
    assert out.media == () and out.audios == () and out.images == () and out.videos == ()


def test_all_media_in_template_order(ckpt, hf_tokenizer):
    a, i, v = wave(), image(), video(with_audio=False)
    out = prompt(ckpt, text=Text("What?"), audio=a, image=i, video=v)
    body = hf_tokenizer.encode("What?", add_special_tokens=False)
    assert out.ids.tolist() == [IM_START, USER, NL] + AUDIO + IMAGE + VIDEO + body + GENERATION
    assert out.media == (MediaItem("audio", 0), MediaItem("image", 0), MediaItem("video", 0))
    assert out.audios == (a,) and out.images == (i,) and out.videos == (v,)
    messages = [{"role": "user", "content": [{"type": "audio", "audio": "a.wav"}, {"type": "image", "image": "i.png"},
                                             {"type": "video", "video": "v.mp4"},
                                             {"type": "text", "text": "What?"}]}]
    expected = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=False)
    assert out.ids.tolist() == list(expected)


def test_audio_in_video_puts_the_track_at_the_video_place(ckpt):
    a, v = wave(), video(with_audio=True)
    out = prompt(ckpt, text=Text("Describe."), audio=a, video=v)
    assert out.media == (MediaItem("audio", 0), MediaItem("video", 0, audio_in_video=True))
    assert len(out.audios) == 2 and out.audios[0] is a and out.audios[1] is v.audio
    ids = out.ids.tolist()
    assert ids[3:9] == AUDIO + VIDEO  # the video keeps its one-pad placeholder; the interleaver expands it
    off = prompt(ckpt, {"use_audio_in_video": False}, text=Text("Describe."), audio=a, video=v)
    assert off.media[1] == MediaItem("video", 0) and off.audios == (a,) and off.ids.tolist() == ids
    silent = prompt(ckpt, video=video(with_audio=False))
    assert silent.media == (MediaItem("video", 0),) and silent.audios == ()


def test_media_without_text_and_no_generation_prompt(ckpt):
    out = prompt(ckpt, {"add_generation_prompt": False}, audio=wave())
    assert out.ids.tolist() == [IM_START, USER, NL] + AUDIO + [IM_END, NL]
    assert out.ids.tolist()[:5] == [151644, 872, 198, 151669, 151675]  # as the reference integration prompt


def test_system_turn_from_input_or_config(ckpt, hf_tokenizer):
    from omnigraph.nodes.prompt.node import QWEN_SYSTEM_PROMPT

    system = hf_tokenizer.encode(QWEN_SYSTEM_PROMPT, add_special_tokens=False)
    out = prompt(ckpt, {"system_prompt": QWEN_SYSTEM_PROMPT}, text=Text("hi"))
    hi = hf_tokenizer.encode("hi", add_special_tokens=False)
    assert out.ids.tolist() == [IM_START, SYSTEM, NL] + system + [IM_END, NL, IM_START, USER, NL] + hi + GENERATION
    given = prompt(ckpt, {"system_prompt": QWEN_SYSTEM_PROMPT}, text=Text("hi"), system=Text("Be brief."))
    brief = hf_tokenizer.encode("Be brief.", add_special_tokens=False)
    assert given.ids.tolist()[:3 + len(brief)] == [IM_START, SYSTEM, NL] + brief


def user_error(ckpt, config=None, **inputs) -> str:
    with pytest.raises(NodeFailed) as info:
        prompt(ckpt, config, **inputs)
    assert isinstance(info.value.error, UserError)
    return str(info.value.error)


def test_bad_inputs(ckpt):
    assert "needs a non-empty text, an audio, an image or a video" in user_error(ckpt)
    assert "needs a non-empty text" in user_error(ckpt, text=Text(""), system=Text("sys"))
    assert "placeholder" in user_error(ckpt, text=Text("sneaky <|audio_pad|> token"))


def test_needs_a_checkpoint():
    with pytest.raises(UserError, match="needs a checkpoint: pass --checkpoint DIR"):
        run_node("prompt", {"text": Text("hi")})
