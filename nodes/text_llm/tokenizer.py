"""The tokenizer and chat template a GGUF file carries: a byte-level BPE (`tokenizers`) built from its
`tokenizer.ggml.tokens` / `merges` (control tokens are special), and its Jinja chat template, rendered in a
sandbox.
"""
from __future__ import annotations

from ...runtime.errors import UserError
from ..common.extras import import_extra

CONTROL = 3  # tokenizer.ggml.token_type of special tokens


class GGUFTokenizer:
    def __init__(self, gguf_model, who: str):
        tokenizers = import_extra("tokenizers", "llm", who)
        g = gguf_model
        if g.field("tokenizer.ggml.model") != "gpt2":
            raise UserError(f"'{g.path}' has a '{g.field('tokenizer.ggml.model')}' tokenizer; only "
                            f"byte-level BPE ('gpt2') is supported")
        tokens, types = g.field("tokenizer.ggml.tokens"), g.field("tokenizer.ggml.token_type")
        merges = [tuple(m.split(" ", 1)) for m in g.field("tokenizer.ggml.merges")]
        bpe = tokenizers.models.BPE({t: i for i, t in enumerate(tokens)}, merges)
        tok = tokenizers.Tokenizer(bpe)
        tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
            tokenizers.pre_tokenizers.Digits(individual_digits=True),
            tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tok.decoder = tokenizers.decoders.ByteLevel()
        tok.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False)
                                for t, kind in zip(tokens, types) if kind == CONTROL])
        self.tokenizer, self.tokens = tok, tokens
        self.eos_id = int(g.field("tokenizer.ggml.eos_token_id"))
        self.template = g.field("tokenizer.chat_template", None)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt text for `messages` (role/content dicts), ending where the assistant's reply begins."""
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        if self.template is None:
            return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + \
                "<|im_start|>assistant\n"
        template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(self.template)
        return template.render(messages=messages, add_generation_prompt=True,
                               bos_token=self.tokens[0], eos_token=self.tokens[self.eos_id])
