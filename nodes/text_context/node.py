"""text_context: ThinkerPrompt -> TalkerContext of a text-only prompt, WITHOUT running the Thinker.

For a prompt without media the Talker reads only the Thinker's layer-0 inputs (word embeddings) of the user
turns, which the prompt already holds; so text-to-speech needs the embedding table, not the Thinker.
A prompt with media needs the Thinker's hidden states: use the thinker node's `talker_context` output.
Token ids (<|im_start|>, `user`, media pads) come from config.json when a checkpoint is given.
"""
from __future__ import annotations

from typing import Any

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.ports import Input, Output
from ..qwen.payloads import TalkerContext, ThinkerPrompt


class TextContext(Node):
    kind = "text_context"

    class Config(NodeConfig):
        pass

    inputs = (Input("thinker_prompt", ThinkerPrompt, doc="A prompt without media (its embeddings are used)."),)
    outputs = (Output("talker_context", TalkerContext, doc="The user turns for the Talker (hidden=None)."),)

    def setup(self, device: str, checkpoint: Any) -> None:
        from ..qwen.special_tokens import media_token_ids, token_id

        config = {} if checkpoint is None else checkpoint.config
        media = media_token_ids(config)
        self._media_ids = (media.audio, media.image, media.video)
        self._turn_ids = (token_id(config, "im_start_token_id"), token_id(config, "user_token_id"))

    def process(self, thinker_prompt: ThinkerPrompt) -> dict[str, TalkerContext]:
        import torch

        from ..qwen3.talker_context import build_talker_context

        p = thinker_prompt
        n_media = int(torch.isin(p.input_ids, torch.tensor(self._media_ids)).sum())
        if n_media or p.visual_mask is not None or p.layout.has_media:
            raise UserError(f"node '{self.name}' (text_context) takes prompts without media, but this one has "
                            f"{n_media} audio/image/video token(s): the Talker needs the Thinker's hidden states "
                            "there, so feed talker.context from the thinker's `talker_context` output instead")
        return {"talker_context": build_talker_context(p.input_ids, p.embeds, None, self._media_ids,
                                                       *self._turn_ids, p.layout)}
