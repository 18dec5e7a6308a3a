"""HTML documents: parsed once with parsel (lxml), selected with XPath.

CSS selectors arrive already translated to XPath (see ``selectors``). A
selection that is an element yields its whitespace-normalised text; use
``::text`` or ``::attr(name)`` (or XPath ``text()``/``@name``) for precision.
"""

from __future__ import annotations

import re
from typing import Any

from parsel import Selector as Node

from ..errors import CharsetError

# A charset declared in the markup (<meta charset=...> or the http-equiv
# form), looked for where browsers look: the first 1024 bytes.
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_PRESCAN_BYTES = 1024


def _declared(body: bytes) -> str | None:
    found = _META_CHARSET.search(body[:_PRESCAN_BYTES])
    return found.group(1).decode("ascii") if found else None


def decode(body: bytes, charset: str | None) -> str:
    """The body as text, in the response's charset, else the markup's ``<meta>`` one, else UTF-8.

    A charset Python does not know is read as UTF-8 (what servers usually
    mean). Bytes that the charset cannot decode raise ``CharsetError``:
    replacing them would store text the page never had, with no sign of it.
    """
    declared = charset or _declared(body)
    for encoding in dict.fromkeys(name for name in (declared, "utf-8") if name):
        try:
            return body.decode(encoding)
        except LookupError:  # a charset nobody has heard of
            continue
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.end].hex(" ")
            unknown = f" (charset {declared!r} is unknown)" if encoding != declared and declared else ""
            raise CharsetError(
                f"cannot decode the body as {encoding}{unknown}: bytes {bad} at offset {exc.start}"
            ) from None
    raise AssertionError("unreachable: UTF-8 is always known")


def is_empty(body: bytes) -> bool:
    """Whether an HTML body has nothing in it: a page with no content, not one with no matches."""
    return not body.strip()


def parse(body: bytes, charset: str | None) -> Node:
    return Node(text="<html></html>" if is_empty(body) else decode(body, charset), type="html")


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
