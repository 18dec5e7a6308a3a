"""HTML documents: parsed once with parsel (lxml), selected with XPath.

CSS selectors arrive already translated to XPath (see ``selectors``). A
selection that is an element yields its whitespace-normalised text; use
``::text`` or ``::attr(name)`` (or XPath ``text()``/``@name``) for precision.
"""

from __future__ import annotations

from typing import Any

from parsel import Selector as Document

from ..selectors import Selector


def parse(body: bytes, charset: str | None) -> Document:
    text = body.decode(charset or "utf-8", errors="replace") if body else "<html></html>"
    return Document(text=text, type="html")


def select_records(document: Document, records: Selector | None) -> list[Document]:
    if records is None:
        return [document]
    return list(document.xpath(records.query))


def select_value(node: Document, selector: Selector) -> Any:
    found = node.xpath(selector.query)
    if not found:
        return None
    root = found[0].root
    if isinstance(root, str):
        return root.strip()
    if isinstance(root, (int, float, bool)):
        return root
    return " ".join(" ".join(found[0].xpath(".//text()").getall()).split())
