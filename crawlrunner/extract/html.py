"""HTML documents: parsed once with parsel (lxml), selected with XPath.

CSS selectors arrive already translated to XPath (see ``selectors``). A
selection that is an element yields its whitespace-normalised text; use
``::text`` or ``::attr(name)`` (or XPath ``text()``/``@name``) for precision.
"""

from __future__ import annotations

from typing import Any

from parsel import Selector as Node


def parse(body: bytes, charset: str | None) -> Node:
    text = body.decode(charset or "utf-8", errors="replace") if body else "<html></html>"
    return Node(text=text, type="html")


def _value(node: Node) -> Any:
    root = node.root
    if isinstance(root, str):
        return root.strip()
    if isinstance(root, (int, float, bool)):
        return root
    # Like textContent: text nodes joined as they are, then whitespace folded.
    return " ".join("".join(node.xpath(".//text()").getall()).split())


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
