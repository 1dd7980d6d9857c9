"""prompt on a Qwen2.5-Omni checkpoint: placeholder ids from config.json (`*_token_index`) and strings from its
tokenizer (`<|AUDIO|>` in `<|audio_bos|>`/`<|audio_eos|>`, `<|IMAGE|>`/`<|VIDEO|>` in `<|vision_bos|>`/
`<|vision_eos|>`, reference section 9), then expanded by the qwen2_5_interleaver."""
from __future__ import annotations

import json

import pytest
import torch
from oracle25 import build_model, save_checkpoint

from omnigraph.nodes.qwen2_5_interleaver.node import Qwen25Interleaver
from omnigraph.runtime.checkpoint import Checkpoint
from omnigraph.runtime.errors import NodeFailed, UserError
from omnigraph.runtime.media_payloads import AudioEmbeddings, Image, MediaItem, Video, VisionEmbeddings
from omnigraph.runtime.payloads import Text, Waveform
from omnigraph.runtime.tiny_checkpoints.tokenizer_files import vocab_and_merges
from omnigraph.runtime.tokenizer import build_bpe
from omnigraph.testing import run_node

IM_START, IM_END, NL, USER, ASSISTANT = 151644, 151645, 198, 872, 77091
AUDIO, A_BOS, A_EOS, V_BOS, V_EOS, IMAGE, VIDEO = 151646, 151647, 151648, 151652, 151653, 151655, 151656
SPECIAL = [(151643, "<|endoftext|>"), (151644, "<|im_start|>"), (151645, "<|im_end|>"), (151646, "<|AUDIO|>"),
           (151647, "<|audio_bos|>"), (151648, "<|audio_eos|>"), (151649, "<|box_end|>"), (151650, "<|quad_start|>"),
           (151651, "<|quad_end|>"), (151652, "<|vision_bos|>"), (151653, "<|vision_eos|>"),
           (151654, "<|vision_pad|>"), (151655, "<|IMAGE|>"), (151656, "<|VIDEO|>")]
TEMPLATE = """\
{%- for message in messages %}<|im_start|>{{ message['role'] }}
{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}
{%- if part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>
{%- elif part['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>
{%- elif part['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>
{%- elif 'text' in part %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def write_qwen2_5_tokenizer(folder) -> None:
    """tokenizer.json (the real Qwen vocabulary with the Qwen2.5-Omni special tokens) and a chat template."""
    vocab, merges = vocab_and_merges()
    build_bpe(vocab, merges, [(i, c, True) for i, c in SPECIAL]).save(str(folder / "tokenizer.json"))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": TEMPLATE}))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = save_checkpoint(build_model(None), tmp_path_factory.mktemp("q25") / "ckpt")
    write_qwen2_5_tokenizer(path)
    return Checkpoint.open(path)


def wave(seconds: float) -> Waveform:
    return Waveform(torch.zeros(int(16000 * seconds)), 16000)


def test_placeholders_come_from_the_checkpoint(ckpt):
    picture = Image(torch.zeros(28, 28, 3, dtype=torch.uint8))
    clip = Video(torch.zeros(2, 28, 28, 3, dtype=torch.uint8), fps=2.0, audio=wave(3.0))
    p = run_node("prompt", {"text": Text("hi"), "audio": wave(1.0), "image": picture, "video": clip},
                 checkpoint=ckpt)["prompt"]
    hi = p.ids.tolist()[12:-5]
    assert p.ids.tolist() == ([IM_START, USER, NL, A_BOS, AUDIO, A_EOS, V_BOS, IMAGE, V_EOS, V_BOS, VIDEO, V_EOS]
                              + hi + [IM_END, NL, IM_START, ASSISTANT, NL])
    assert len(hi) == 1
    assert p.media == (MediaItem("audio", 0), MediaItem("image", 0), MediaItem("video", 0, audio_in_video=True))

    # the interleaver expands it: the video's track interleaved inside the audio wrappers
    audio = AudioEmbeddings(torch.randn(25 + 75, 64), (25, 75))
    vision = VisionEmbeddings(torch.randn(1 + 4, 64), (), ((1, 2, 2), (1, 4, 4)), ("image", "video"), (0.0, 1.0))
    out = run_node(Qwen25Interleaver, {"prompt": p, "audio": audio, "vision": vision}, checkpoint=ckpt)
    ids = out["thinker_prompt"].input_ids.tolist()
    block = ids[ids.index(VIDEO) - 3:]
    assert block[:3] == [V_EOS, V_BOS, A_BOS] and block[3:7] == [VIDEO] * 4 and block[7:57] == [AUDIO] * 50
    assert block[57:82] == [AUDIO] * 25 and block[82:84] == [A_EOS, V_EOS]


def test_placeholder_text_in_the_message_is_named_in_the_error(ckpt):
    with pytest.raises(NodeFailed) as info:
        run_node("prompt", {"text": Text("sneaky <|AUDIO|> token")}, checkpoint=ckpt)
    assert isinstance(info.value.error, UserError)
    assert "'<|AUDIO|>', '<|IMAGE|>', '<|VIDEO|>'" in str(info.value.error)


def test_a_config_without_placeholder_ids_is_a_user_error(ckpt, tmp_path):
    for f in ckpt.path.iterdir():
        if f.name != "config.json":
            (tmp_path / f.name).symlink_to(f)
    config = json.loads((ckpt.path / "config.json").read_text())
    del config["thinker_config"]["image_token_index"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="thinker_config.image_token_id or image_token_index is missing"):
        run_node("prompt", {"text": Text("hi")}, checkpoint=Checkpoint.open(tmp_path))
