"""A tiny, safe template language: `{name}` is replaced by the text of the input `name`; `{{` and `}}` are
literal braces. Nothing else: no attribute or index access, conversions or format specs."""
from __future__ import annotations

import string


def parse(template: str, fields: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """template -> [(literal text, field name or None)]; ValueError naming a bad or unknown field."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r} is malformed ({exc}); write {{{{ and }}}} for literal braces")
    out = []
    for literal, name, spec, conversion in parts:
        if name is not None:
            if spec or conversion or not name.isidentifier():
                raise ValueError(f"template field {{{name}{'!' + conversion if conversion else ''}"
                                 f"{':' + spec if spec else ''}}} is not allowed: only plain {{name}} fields "
                                 f"(no attribute, index, conversion or format spec)")
            if name not in fields:
                from ...runtime.errors import did_you_mean

                hint = did_you_mean(name, fields)
                raise ValueError(f"template field {{{name}}} is not an input of text_template"
                                 f"{' (' + hint + ')' if hint else ''}; inputs: {', '.join(fields)}")
        out.append((literal, name))
    return out
