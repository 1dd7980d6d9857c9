"""prompt: a user turn (text and media) and an optional system turn as a tokenised ChatML prompt.

The checkpoint's chat template renders

    [<|im_start|>system\\n{system}<|im_end|>\\n]
    <|im_start|>user\\n{audio}{image}{video}{text}<|im_end|>\\n
    <|im_start|>assistant\\n                                       (add_generation_prompt)

with one placeholder per media item, in the order audio, image, video, text (the layout the Qwen3-Omni and
Qwen2.5-Omni templates give for that content list), e.g. Qwen3-Omni's `<|audio_start|><|audio_pad|><|audio_end|>`,
`<|vision_start|><|image_pad|><|vision_end|>`, `<|vision_start|><|video_pad|><|vision_end|>` or Qwen2.5-Omni's
`<|audio_bos|><|AUDIO|><|audio_eos|>`, `<|vision_bos|><|IMAGE|><|vision_eos|>`, `<|vision_bos|><|VIDEO|><|vision_eos|>`.
The placeholder ids come from config.json (thinker_config `audio_token_id` or `audio_token_index`, likewise
image and video), their strings from the tokenizer.
A video whose audio track is used (`use_audio_in_video`) keeps the plain video placeholder; its track goes into
`audios` at the video's place, and the mrope_interleaver expands it into the interleaved audio/video form.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ...runtime.errors import UserError
from ...runtime.media_payloads import Image, MediaItem, PromptTokens, Video
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text, Waveform
from ...runtime.ports import Input, Output

# The system prompt Qwen's docs give for spoken replies (the Talker was trained with it).
QWEN_SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
                      "perceiving auditory and visual inputs, as well as generating text and speech.")
PLACEHOLDER_KINDS = ("audio", "image", "video")


class Prompt(Node):
    kind = "prompt"
    needs_checkpoint = True

    class Config(NodeConfig):
        system_prompt: str | None = Field(
            None, description="System turn used when no `system` input is given (none by default). Spoken "
                              "replies need Qwen's: \"" + QWEN_SYSTEM_PROMPT + "\"")
        use_audio_in_video: bool = Field(
            True, description="Give the model a video's audio track along with its frames (if it has one).")
        add_generation_prompt: bool = Field(True, description="End with '<|im_start|>assistant\\n'.")

    inputs = (
        Input("text", Text, required=False, doc="The user's message."),
        Input("system", Text, required=False, doc="System prompt (overrides config system_prompt)."),
        Input("audio", Waveform, required=False, doc="An audio clip for the user turn (16 kHz mono)."),
        Input("image", Image, required=False, doc="An image for the user turn."),
        Input("video", Video, required=False, doc="A video for the user turn (with its audio track, if any)."),
    )
    outputs = (Output("prompt", PromptTokens, doc="Token ids with one placeholder per media item, and the media."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ...runtime.tokenizer import QwenTokenizer

        if checkpoint is None:
            raise UserError(f"node '{self.name}' (prompt) needs a checkpoint folder with tokenizer files "
                            "(pass --checkpoint DIR)")
        self._tokenizer = QwenTokenizer.from_dir(checkpoint.path)
        thinker = checkpoint.config.get("thinker_config") or {}
        self._pad_ids: dict[str, int] = {}
        for kind in PLACEHOLDER_KINDS:  # Qwen3-Omni names the field `*_token_id`, Qwen2.5-Omni `*_token_index`
            token_id = next((thinker[f] for f in (f"{kind}_token_id", f"{kind}_token_index") if f in thinker), None)
            if token_id is None or self._tokenizer.id_to_token(int(token_id)) is None:
                raise UserError(f"{checkpoint.path / 'config.json'}: no {kind} placeholder the tokenizer knows "
                                f"(thinker_config.{kind}_token_id or {kind}_token_index is "
                                f"{'missing' if token_id is None else token_id})")
            self._pad_ids[kind] = int(token_id)

    def process(self, text: Text | None = None, system: Text | None = None, audio: Waveform | None = None,
                image: Image | None = None, video: Video | None = None) -> dict[str, Any]:
        import torch

        user_text = text.text if text is not None else ""
        if not user_text and audio is None and image is None and video is None:
            raise UserError(f"node '{self.name}' (prompt) needs a non-empty text, an audio, an image or a video "
                            "for the user turn; none was given")
        audio_in_video = self.config.use_audio_in_video and video is not None and video.audio is not None
        content: list[dict[str, Any]] = []
        given: dict[str, Any] = {"audio": audio, "image": image, "video": video}
        for kind in ("audio", "image", "video"):
            if given[kind] is not None:
                content.append({"type": kind})
        if user_text:
            content.append({"type": "text", "text": user_text})
        messages: list[dict[str, Any]] = []
        system_text = system.text if system is not None else self.config.system_prompt
        if system_text:
            messages.append({"role": "system", "content": system_text})
        messages.append({"role": "user", "content": content})
        rendered = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=self.config.add_generation_prompt)
        ids = self._tokenizer.encode(rendered)

        kind_of = {token_id: kind for kind, token_id in self._pad_ids.items()}
        found = [kind_of[i] for i in ids if i in kind_of]
        expected = [kind for kind in ("audio", "image", "video") if given[kind] is not None]
        if sorted(found) != sorted(expected):
            tokens = ", ".join(repr(self._tokenizer.id_to_token(i)) for i in self._pad_ids.values())
            raise UserError(f"the prompt has media placeholders {found or 'none'} but the inputs are "
                            f"{expected or 'text only'}: the text may contain placeholder tokens ({tokens}), "
                            "or the checkpoint's chat template drops media items")
        media, audios, counts = [], [], {"audio": 0, "image": 0, "video": 0}
        for kind in found:
            aiv = kind == "video" and audio_in_video
            media.append(MediaItem(kind, counts[kind], audio_in_video=aiv))
            counts[kind] += 1
            if kind == "audio":
                audios.append(audio)
            elif aiv:
                audios.append(video.audio)
        prompt = PromptTokens(ids=torch.tensor(ids, dtype=torch.long), media=tuple(media), audios=tuple(audios),
                              images=(image,) if image is not None else (),
                              videos=(video,) if video is not None else ())
        return {"prompt": prompt}
