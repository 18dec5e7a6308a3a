"""HTML documents: parsed once with parsel (lxml), selected with XPath.

CSS selectors arrive already translated to XPath (see ``selectors``). A
selection that is an element yields its whitespace-normalised text; use
``::text`` or ``::attr(name)`` (or XPath ``text()``/``@name``) for precision.
"""

from __future__ import annotations

from typing import Any

from parsel import Selector as Node


def decode(body: bytes, charset: str | None) -> str:
    """The body as text: its declared charset if Python knows it, else UTF-8; never fails."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset nobody has heard of
        return body.decode("utf-8", errors="replace")


def parse(body: bytes, charset: str | None) -> Node:
    return Node(text=decode(body, charset) if body else "<html></html>", type="html")


# Elements that start a new line when rendered: their text is kept apart from
# their neighbours' even in minified markup ("<li>Tea</li><li>Coffee</li>").
_BLOCK = frozenset(
    "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)


def _text(element: Any, out: list[str]) -> None:
    if isinstance(element.tag, str) and element.tag.lower() in ("script", "style"):
        return
    block = isinstance(element.tag, str) and element.tag.lower() in _BLOCK
    if block:
        out.append(" ")
    if element.text:
        out.append(element.text)
    for child in element:
        _text(child, out)
        if child.tail:
            out.append(child.tail)
    if block:
        out.append(" ")


def element_text(element: Any) -> str:
    """Like textContent, whitespace folded, with block elements kept apart."""
    out: list[str] = []
    _text(element, out)
    return " ".join("".join(out).split())


def _value(node: Node) -> Any:
    root = node.root
    if isinstance(root, str):
        return root.strip()
    if isinstance(root, (int, float, bool)):
        return root
    return element_text(root)


def select(node: Node, query: str) -> list[Any]:
    return [_value(found) for found in node.xpath(query)]


def select_first(node: Node, query: str) -> Any:
    found = node.xpath(query)
    return _value(found[0]) if found else None


def select_nodes(node: Node, query: str) -> list[Node]:
    return list(node.xpath(query))


def text_of(node: Node) -> str:
    markup: str = node.get()
    return markup
