"""The Qwen2.5-Omni tokenizer's added tokens and chat template (reference qwen2.5-omni.md section 9).

The same Qwen vocabulary as Qwen3-Omni; ids 151643-151664 are added tokens, with the media placeholders
renamed: `<|AUDIO|>` inside `<|audio_bos|>`/`<|audio_eos|>`, `<|IMAGE|>` and `<|VIDEO|>` inside
`<|vision_bos|>`/`<|vision_eos|>`.
"""
from __future__ import annotations

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
CHAT_TEMPLATE = """\
{%- for message in messages %}
{%- if loop.first and message['role'] != 'system' %}
{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{{- '<|im_start|>' + message['role'] + '\\n' }}
{%- if message['content'] is string %}
{{- message['content'] }}
{%- else %}
{%- for part in message['content'] %}
{%- if part['type'] == 'audio' or 'audio' in part or 'audio_url' in part %}
{{- '<|audio_bos|><|AUDIO|><|audio_eos|>' }}
{%- elif part['type'] == 'image' or 'image' in part or 'image_url' in part %}
{{- '<|vision_bos|><|IMAGE|><|vision_eos|>' }}
{%- elif part['type'] == 'video' or 'video' in part or 'video_url' in part %}
{{- '<|vision_bos|><|VIDEO|><|vision_eos|>' }}
{%- elif 'text' in part %}
{{- part['text'] }}
{%- endif %}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
