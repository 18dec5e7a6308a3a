"""Selectors, compiled once when the spec loads.

A broken JMESPath, CSS or XPath expression is a spec error with a location,
never a failure in the middle of a crawl. CSS is translated to XPath here
(parsel's translator, which understands ``::text`` and ``::attr(name)``), so
at extraction time every HTML selector is a plain XPath query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from .errors import SelectorSyntaxError

Language = Literal["jmespath", "css", "xpath", "header"]
LANGUAGES: tuple[Language, ...] = ("jmespath", "css", "xpath", "header")


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled selector.

    ``query`` is a compiled JMESPath expression for JSON, an XPath string
    for HTML (CSS already translated), or a header name.
    """

    language: Language
    source: str
    query: Any


def compile_selector(language: Language, source: str) -> Selector:
    """Compile ``source``; raise SelectorSyntaxError with a readable reason."""
    if language == "jmespath":
        return Selector(language, source, _compile_jmespath(source))
    if language == "css":
        return Selector(language, source, _check_xpath(_css_to_xpath(source), source))
    if language == "xpath":
        return Selector(language, source, _check_xpath(source, source))
    if language == "header":
        return Selector(language, source, source)
    raise SelectorSyntaxError(f"unknown selector language {language!r}")


# Field names joined by dots: most JSON selectors in practice.
_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


class KeyPath:
    """A JMESPath expression made only of field names (``a.b.c``), as dict lookups.

    The same answers as jmespath's interpreter (a missing key, or a step into
    something that is not an object, gives None) at a fraction of the cost:
    jmespath builds an interpreter and walks the syntax tree on every search,
    which was the largest part of extracting a record.
    """

    __slots__ = ("expression", "keys")

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.keys = tuple(expression.split("."))

    def search(self, value: Any) -> Any:
        for key in self.keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value


class JMESPath:
    """Any other JMESPath expression, searched with one shared interpreter."""

    __slots__ = ("expression", "parsed")
    _interpreter: Any = None

    def __init__(self, expression: str, parsed: Any) -> None:
        self.expression = expression
        self.parsed = parsed

    def search(self, value: Any) -> Any:
        interpreter = JMESPath._interpreter
        if interpreter is None:
            from jmespath.visitor import TreeInterpreter

            interpreter = JMESPath._interpreter = TreeInterpreter()
        return interpreter.visit(self.parsed, value)


def _compile_jmespath(source: str) -> KeyPath | JMESPath:
    import jmespath
    from jmespath.exceptions import JMESPathError, ParseError

    try:
        parsed = jmespath.compile(source)
        return KeyPath(source) if _KEY_PATH.match(source) else JMESPath(source, parsed.parsed)
    except ParseError as exc:
        raise SelectorSyntaxError(f"invalid JMESPath {source!r}: {exc.msg} at position {exc.lex_position}") from None
    except JMESPathError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SelectorSyntaxError(f"invalid JMESPath {source!r}: {first_line}") from None


def _css_to_xpath(source: str) -> str:
    from cssselect import SelectorError
    from parsel.csstranslator import HTMLTranslator

    try:
        xpath: str = HTMLTranslator().css_to_xpath(source)
    except SelectorError as exc:
        raise SelectorSyntaxError(f"invalid CSS selector {source!r}: {exc}") from None
    return xpath


def _check_xpath(xpath: str, source: str) -> str:
    from lxml import etree

    try:
        etree.XPath(xpath)
    except etree.XPathSyntaxError as exc:
        raise SelectorSyntaxError(f"invalid XPath {source!r}: {exc}") from None
    return xpath
