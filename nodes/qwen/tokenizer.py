"""The Qwen byte-level BPE tokenizer of a checkpoint folder, and its chat template.

Reads `tokenizer.json` when present, else `vocab.json` + `merges.txt` with the special tokens of
`tokenizer_config.json` (`added_tokens_decoder`). The BPE itself is the `tokenizers` library, set up the way
Qwen2/2.5/3 tokenizers are: NFC normalisation, the Qwen pre-tokenizer regex, GPT-2 byte-to-unicode alphabet.
Token streams decode incrementally: text is emitted only once its UTF-8 bytes are complete.

    tok = QwenTokenizer.from_dir(path)
    ids = tok.encode("<|im_start|>user\\nhi<|im_end|>")
    text = tok.decode(ids)
    dec = tok.stream_decoder(); pieces = [dec.push(i) for i in ids] + [dec.flush()]
"""
from __future__ import annotations

import codecs
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from ...runtime.errors import UserError

# The pre-tokenizer split of Qwen2/2.5/3 (as in their tokenizer.json).
PRETOKENIZE_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                     r"|\s*[\r\n]+|\s+(?!\S)|\s+")


class TokenizerError(UserError):
    """Tokenizer files that are missing or unreadable."""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters (used by vocab.json)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_bpe(vocab: dict[str, int], merges: Sequence[tuple[str, str]],
              special_tokens: Iterable[tuple[int, str, bool]]) -> Any:
    """A `tokenizers.Tokenizer` for a Qwen vocabulary; special_tokens: (id, content, special) triples."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = dict(vocab)
    added = sorted(special_tokens)
    for token_id, content, _ in added:
        vocab[content] = token_id  # the model knows their ids, so adding them below keeps those ids
    tok = Tokenizer(models.BPE(vocab=vocab, merges=list(merges), fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    for _, content, special in added:  # one at a time, in id order; `special` decides skip_special_tokens
        token = AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False, single_word=False)
        (tok.add_special_tokens if special else tok.add_tokens)([token])
    return tok


class QwenTokenizer:
    """Encode/decode with a checkpoint's vocabulary; special tokens in text are recognised by default."""

    def __init__(self, backend: Any, special: dict[str, int], skip_ids: frozenset[int],
                 chat_template: str | None = None, source: str = ""):
        self._tok = backend
        self._plain: Any = None  # a copy that reads special-token text as ordinary text (made on demand)
        self.special_tokens = dict(special)  # content -> id of every added token
        self.skip_ids = skip_ids  # ids dropped by decode(skip_special_tokens=True)
        self.chat_template = chat_template
        self.source = source
        to_byte = {ord(c): chr(b) for b, c in bytes_to_unicode().items()}  # alphabet char -> char of its byte
        vocab = backend.get_vocab(with_added_tokens=True)
        table: list[bytes] = [b""] * (max(vocab.values()) + 1)
        added = set(special.values())
        for token, token_id in vocab.items():
            try:
                table[token_id] = (token.encode("utf-8") if token_id in added
                                   else token.translate(to_byte).encode("latin-1"))
            except UnicodeEncodeError:  # not in the byte-level alphabet: take the text as it is
                table[token_id] = token.encode("utf-8")
        self._bytes = table

    # -- loading -------------------------------------------------------------------------------------------
    @classmethod
    def from_dir(cls, path: str | Path) -> QwenTokenizer:
        """The tokenizer of a checkpoint folder; loaded once per process while its files are unchanged."""
        path = Path(path).expanduser().resolve()
        stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(path.glob("*"))
                      if p.name in _TOKENIZER_FILES) if path.is_dir() else ()
        return _load_cached(path, stamp)

    @classmethod
    def _load(cls, path: Path) -> QwenTokenizer:
        config = _json(path / "tokenizer_config.json", required=False) or {}
        template = _chat_template(path, config)
        if (path / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            try:
                backend = Tokenizer.from_file(str(path / "tokenizer.json"))
            except Exception as exc:  # noqa: BLE001 - the library raises plain Exceptions
                raise TokenizerError(f"tokenizer file '{path / 'tokenizer.json'}' is unreadable: {exc}") from None
            specials = [(i, t.content, bool(t.special)) for i, t in backend.get_added_tokens_decoder().items()]
        else:
            vocab = _json(path / "vocab.json")
            merges = read_merges(path / "merges.txt")
            specials = [(int(i), t["content"], bool(t.get("special", True)))
                        for i, t in (config.get("added_tokens_decoder") or {}).items()]
            backend = build_bpe(vocab, merges, specials)
        special = {content: token_id for token_id, content, _ in specials}
        flags = {int(i): bool(t.get("special", True)) for i, t in (config.get("added_tokens_decoder") or {}).items()}
        skip = frozenset(token_id for token_id, _, is_special in specials if flags.get(token_id, is_special))
        return cls(backend, special, skip, template, str(path))

    # -- text <-> ids --------------------------------------------------------------------------------------
    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Token ids of `text`; with allow_special=False, '<|im_start|>' etc. are tokenised as plain text."""
        backend = self._tok
        if not allow_special:
            if self._plain is None:
                from tokenizers import Tokenizer

                plain = Tokenizer.from_str(self._tok.to_str())
                plain.encode_special_tokens = True
                self._plain = plain
            backend = self._plain
        return backend.encode(text, add_special_tokens=False).ids

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (b'' for ids outside the vocabulary, e.g. embedding padding rows)."""
        return self._bytes[token_id] if 0 <= token_id < len(self._bytes) else b""

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        skip = self.skip_ids if skip_special_tokens else frozenset()
        data = b"".join(self.token_bytes(int(i)) for i in ids if int(i) not in skip)
        return data.decode("utf-8", errors="replace")

    def stream_decoder(self, *, skip_special_tokens: bool = False) -> StreamDecoder:
        return StreamDecoder(self, skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tok.id_to_token(token_id)

    @property
    def vocab_size(self) -> int:
        """Number of ids the tokenizer knows (ordinary plus added tokens)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    # -- chat template -------------------------------------------------------------------------------------
    def apply_chat_template(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True,
                            **extra: Any) -> str:
        """The prompt text the checkpoint's Jinja chat template gives for `messages`."""
        if not self.chat_template:
            raise TokenizerError(f"the tokenizer in '{self.source}' has no chat template "
                                 "(expected chat_template.jinja, chat_template.json or tokenizer_config.json)")
        return render_chat_template(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                                    **extra)


_TOKENIZER_FILES = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "chat_template.json",
                    "chat_template.jinja"}


@lru_cache(maxsize=8)
def _load_cached(path: Path, stamp: tuple) -> QwenTokenizer:  # stamp: the files' names, mtimes and sizes
    return QwenTokenizer._load(path)


class StreamDecoder:
    """Turns token ids into text as they arrive; multi-byte characters split across tokens wait until whole."""

    def __init__(self, tokenizer: QwenTokenizer, skip_special_tokens: bool = False):
        self._tok = tokenizer
        self._skip = tokenizer.skip_ids if skip_special_tokens else frozenset()
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """The text completed by this token ('' while a character is still incomplete)."""
        if token_id in self._skip:
            return ""
        return self._utf8.decode(self._tok.token_bytes(int(token_id)))

    def flush(self) -> str:
        """Whatever is left at the end of the stream (a U+FFFD for a truncated character)."""
        return self._utf8.decode(b"", final=True)


def render_chat_template(template: str, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True,
                         **extra: Any) -> str:
    """Render a Hugging Face-style chat template (sandboxed Jinja, trim_blocks and lstrip_blocks)."""
    import jinja2

    try:
        return compiled_chat_template(template).render(messages=messages,
                                                       add_generation_prompt=add_generation_prompt, **extra)
    except jinja2.TemplateError as exc:
        raise TokenizerError(f"chat template failed: {exc}") from None


@lru_cache(maxsize=16)
def compiled_chat_template(template: str) -> Any:
    """The template compiled once per process (compiling takes milliseconds, rendering microseconds)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = _raise_from_template
    return env.from_string(template)


def _raise_from_template(message: str) -> None:
    raise TokenizerError(f"chat template: {message}")


def read_merges(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TokenizerError(f"tokenizer file '{path}' is missing (need tokenizer.json, or vocab.json "
                             "and merges.txt)") from None
    merges = []
    for n, line in enumerate(lines, start=1):
        if not line or (n == 1 and line.startswith("#version")):
            continue
        left, sep, right = line.partition(" ")
        if not sep or not left or not right or " " in right:
            raise TokenizerError(f"{path}:{n}: expected two tokens separated by one space, got {line!r}")
        merges.append((left, right))
    return merges


def _chat_template(path: Path, config: dict[str, Any]) -> str | None:
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    data = _json(path / "chat_template.json", required=False)
    template = (data or {}).get("chat_template") or config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) else None


def _json(path: Path, required: bool = True) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return None
        raise TokenizerError(f"tokenizer file '{path}' is missing (need tokenizer.json, or vocab.json "
                             "and merges.txt)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerError(f"tokenizer file '{path}' is unreadable: {exc}") from None
