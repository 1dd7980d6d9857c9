"""The Qwen2.5-Omni tokenizer's added tokens and chat template (reference qwen2.5-omni.md section 9).

The same Qwen vocabulary as Qwen3-Omni; ids 151643-151664 are added tokens, with the media placeholders
renamed: `<|AUDIO|>` inside `<|audio_bos|>`/`<|audio_eos|>`, `<|IMAGE|>` and `<|VIDEO|>` inside
`<|vision_bos|>`/`<|vision_eos|>`.
"""
from __future__ import annotations

from ..qwen.tokenizer_files import chat_template

# (id, content, special) of every added token.
SPECIAL_TOKENS: tuple[tuple[int, str, bool], ...] = tuple(
    (151643 + i, content, special) for i, (content, special) in enumerate([
        ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
        ("<|AUDIO|>", True), ("<|audio_bos|>", True), ("<|audio_eos|>", True),
        ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
        ("<|vision_bos|>", True), ("<|vision_eos|>", True), ("<|vision_pad|>", True),
        ("<|IMAGE|>", True), ("<|VIDEO|>", True),
        ("<tool_call>", False), ("</tool_call>", False),
        ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
        ("<|repo_name|>", False), ("<|file_sep|>", False),
    ]))

# ChatML as the release writes it: a default system turn when the first message is not one, then one
# placeholder per content item, in content order.
CHAT_TEMPLATE = chat_template("<|audio_bos|><|AUDIO|><|audio_eos|>", "<|vision_bos|><|IMAGE|><|vision_eos|>",
                              "<|vision_bos|><|VIDEO|><|vision_eos|>", default_system="You are a helpful assistant.")
