"""Selectors, compiled once when the spec loads.

A broken JMESPath, CSS or XPath expression is a spec error with a location,
never a failure in the middle of a crawl. CSS is translated to XPath here
(parsel's translator, which understands ``::text`` and ``::attr(name)``), so
at extraction time every HTML selector is a plain XPath query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Language = Literal["jmespath", "css", "xpath", "header"]
LANGUAGES: tuple[Language, ...] = ("jmespath", "css", "xpath", "header")


class SelectorSyntaxError(ValueError):
    """An expression that does not compile; the message says why."""


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


def _compile_jmespath(source: str) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError, ParseError

    try:
        return jmespath.compile(source)
    except ParseError as exc:
        raise SelectorSyntaxError(
            f"invalid JMESPath {source!r}: {exc.msg} at position {exc.lex_position}"
        ) from None
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
