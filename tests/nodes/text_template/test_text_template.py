"""text_template: safe {name} fields, streaming around {stream}, errors at the YAML line."""
from __future__ import annotations

import pytest

from omnigraph.runtime.errors import GraphValidationError, NodeFailed, UserError
from omnigraph.runtime.payloads import Text
from omnigraph.testing import graph_from_yaml, run_node


def test_whole_fields_and_literal_braces() -> None:
    out = run_node("text_template", {"question": Text("Why?"), "context": Text("[1] Because.")},
                   {"template": "Passages:\n{context}\n\nQ: {question} {{not a field}}"})
    assert out["text"].text == "Passages:\n[1] Because.\n\nQ: Why? {not a field}"


def test_stream_field_streams_piece_by_piece() -> None:
    out = run_node("text_template", {"stream": [Text("Paris "), Text("is big.")], "extra": Text("!")},
                   {"template": "Answer: {stream} {extra}"})
    assert [p.text for p in out["pieces"]] == ["Answer: ", "Paris ", "is big.", " !"]
    assert out["text"].text == "Answer: Paris is big. !"


@pytest.mark.parametrize("template, message", [
    ("{questoin}", "did you mean 'question'"),
    ("{question.__class__}", "not allowed"),
    ("{context[0]}", "not allowed"),
    ("{text!r}", "not allowed"),
    ("{text:>10}", "not allowed"),
    ("{", "malformed"),
])
def test_bad_fields_are_config_errors_at_the_yaml_line(template: str, message: str) -> None:
    yaml_text = f"nodes:\n  fmt:\n    kind: text_template\n    config:\n      template: {template!r}\n" \
                "inputs: {q: fmt.question}\noutputs: {text: fmt.text}\n"
    with pytest.raises(GraphValidationError, match=message) as info:
        graph_from_yaml(yaml_text)
    assert any(issue.where.line == 5 and issue.code == "bad-config" for issue in info.value.issues)


def test_a_field_whose_input_has_no_value_is_a_user_error() -> None:
    from omnigraph.runtime.errors import NodeFailed

    with pytest.raises((UserError, NodeFailed), match="uses {context} but its `context` input has no value"):
        run_node("text_template", {"question": Text("q")}, {"template": "{question} {context}"})


def test_missing_empty_takes_whichever_input_came_and_none_is_still_an_error() -> None:
    config = {"template": "Q: {question}{text}", "missing": "empty"}
    assert run_node("text_template", {"text": Text("typed")}, config)["text"].text == "Q: typed"
    assert run_node("text_template", {"question": Text("spoken")}, config)["text"].text == "Q: spoken"
    with pytest.raises(NodeFailed, match=r"none of the template.s fields \(question, text\) has a value"):
        run_node("text_template", {}, config)
