"""``{name}`` templates for URLs, parameters, headers and bodies.

Templates are compiled when the spec loads (so an unknown variable is a spec
error) and rendered once per request. Only ``{identifier}`` is a placeholder:
other braces (a GraphQL query in a JSON body, say) are literal, and ``{{``
and ``}}`` write a literal brace where a placeholder would otherwise be read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import TemplateError

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def escape(text: str) -> str:
    """``text`` as a template that renders to itself."""
    return text.replace("{", "{{").replace("}", "}}")


def value_text(value: Any) -> str:
    """How a variable's value is written into text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: literal text and variable names, alternating."""

    source: str
    parts: tuple[str, ...]  # even indexes: literal text; odd: variable names
    # Worked out once: rendering runs for every request.
    is_static: bool = field(init=False, repr=False, compare=False)
    is_single_placeholder: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.parts
        object.__setattr__(self, "is_static", len(parts) == 1)
        object.__setattr__(self, "is_single_placeholder", len(parts) == 3 and parts[0] == "" and parts[2] == "")

    @classmethod
    def compile(cls, source: str) -> Template:
        parts: list[str] = []
        literal = ""
        position = 0
        for match in _PLACEHOLDER.finditer(source):
            literal += source[position : match.start()]
            token = match.group(0)
            if token in ("{{", "}}"):
                literal += token[0]
            else:
                parts += [literal, match.group(1)]
                literal = ""
            position = match.end()
        parts.append(literal + source[position:])
        return cls(source, tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        return self.parts[1::2]

    def render(self, values: Mapping[str, Any], *, url: bool = False) -> str:
        """The text with every placeholder filled.

        In a URL, values are percent-encoded (``/`` kept), except when the
        whole template is one placeholder: then the value is a URL itself.
        """
        if self.is_static:
            return self.parts[0]
        encode = url and not self.is_single_placeholder
        out = []
        for index, part in enumerate(self.parts):
            if index % 2 == 0:
                out.append(part)
                continue
            try:
                value = values[part]
            except KeyError:
                raise TemplateError(f"no value for {{{part}}}") from None
            if type(value) is int:  # a range's number, the usual value: digits need no check and no quoting
                out.append(str(value))
                continue
            text = value_text(value)
            if "\r" in text or "\n" in text:
                raise TemplateError(f"the value of {{{part}}} contains a line break")
            out.append(quote(text, safe="/") if encode else text)
        return "".join(out)


def compile_tree(value: Any) -> Any:
    """Compile every string inside a JSON-like value into a Template."""
    if isinstance(value, str):
        return Template.compile(value)
    if isinstance(value, dict):
        return {k: compile_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compile_tree(v) for v in value]
    return value


def render_tree(value: Any, values: Mapping[str, Any]) -> Any:
    """Render a compiled tree. A string that is just ``{name}`` keeps the value's type."""
    if isinstance(value, Template):
        if value.is_single_placeholder:
            return values.get(value.parts[1])
        return value.render(values)
    if isinstance(value, dict):
        return {k: render_tree(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_tree(v, values) for v in value]
    return value


def tree_names(value: Any) -> set[str]:
    """Every variable a compiled tree refers to."""
    if isinstance(value, Template):
        return set(value.names)
    if isinstance(value, dict):
        return set().union(*(tree_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(tree_names(v) for v in value)) if value else set()
    return set()
