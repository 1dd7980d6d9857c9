"""text_template: formats text inputs with a template (passages into a prompt, a preamble before an answer).

Glue needs no code. `{question}`, `{context}`, `{text}` and `{extra}` take whole texts; `{stream}` takes a
text stream, and the `pieces` output streams: everything before `{stream}` as soon as the whole inputs are
there, then each streamed piece as it comes, then the rest. `text` is the whole result at the end.
With `missing: empty`, a field whose input has no value (its source was skipped: e.g. an optional graph input
not given) is written as nothing, so `{question}{text}` takes whichever of two inputs came; a run where none of
the template's fields has a value is still an error.
"""
from __future__ import annotations

from typing import Iterator, Literal

from pydantic import Field, field_validator

from ...runtime.errors import UserError
from ...runtime.node import Node, NodeConfig
from ...runtime.payloads import Text
from ...runtime.ports import Input, Output
from .template import parse

WHOLE_FIELDS = ("question", "context", "text", "extra")
FIELDS = WHOLE_FIELDS + ("stream",)


class TextTemplate(Node):
    kind = "text_template"

    class Config(NodeConfig):
        template: str = Field(description="Text with {question}, {context}, {text}, {extra} or {stream} fields "
                              "({{ and }} for literal braces).")
        missing: Literal["error", "empty"] = Field("error", description="A field whose input has no value: an "
                                                   "error, or written as nothing (at least one must have one).")

        @field_validator("template")
        @classmethod
        def _fields_known(cls, template: str) -> str:
            parse(template, FIELDS)
            return template

    inputs = tuple(Input(name, Text, required=False, doc=f"The text of {{{name}}}.") for name in WHOLE_FIELDS) + (
        Input("stream", Text, stream=True, required=False, doc="The text stream of {stream}, passed on piece by "
              "piece."),)
    outputs = (
        Output("pieces", Text, stream=True, doc="The result as it can be written (streams with {stream})."),
        Output("text", Text, doc="The whole result."),
    )

    def stream(self, stream: Iterator[Text] | None = None, **whole: Text | None) -> Iterator[tuple[str, Text]]:
        written = []
        fields = [name for _, name in parse(self.config.template, FIELDS) if name is not None]
        given = [name for name in fields if (stream if name == "stream" else whole.get(name)) is not None]
        if fields and not given:
            raise UserError(f"node '{self.name}' (text_template): none of the template's fields "
                            f"({', '.join(sorted(set(fields)))}) has a value (connect one, or check that the "
                            f"nodes feeding them ran)")
        empty = self.config.missing == "empty"
        for literal, name in parse(self.config.template, FIELDS):
            pieces = [literal] if literal else []
            if name == "stream":
                if stream is None and empty:
                    yield from self._emit(written, pieces)
                    continue
                if stream is None:
                    raise UserError(self._unfed(name))
                yield from self._emit(written, pieces)
                for piece in stream:  # passed on as they come
                    yield from self._emit(written, [piece.text])
                continue
            if name is not None:
                if whole.get(name) is None and not empty:
                    raise UserError(self._unfed(name))
                if whole.get(name) is not None:
                    pieces.append(whole[name].text)
            yield from self._emit(written, pieces)
        yield "text", Text("".join(written))

    @staticmethod
    def _emit(written: list[str], pieces: list[str]) -> Iterator[tuple[str, Text]]:
        text = "".join(pieces)
        if text:
            written.append(text)
            yield "pieces", Text(text)

    def _unfed(self, name: str) -> str:
        return (f"node '{self.name}' (text_template): the template uses {{{name}}} but its `{name}` input has no "
                f"value (connect {self.name}.{name}, or check that the node feeding it ran)")
