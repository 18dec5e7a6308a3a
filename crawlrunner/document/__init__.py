"""A fetched document, parsed once, and selectors evaluated against it."""

from __future__ import annotations

from typing import Any

from ..results import FetchResult
from ..selectors import Selector
from ..spec.model import Format
from . import json

# Stored in ``fetch_log.error`` of a request that succeeded (its ``error_kind``
# stays null) and counted as a warning: an HTML page with nothing in it is a
# valid document, but almost never what a crawl expected.
EMPTY_BODY = "empty body: no records"


def _html() -> Any:
    # parsel and lxml load only for a crawl that reads HTML.
    from . import html

    return html


class Page:
    """The parsed body of one response, plus its metadata.

    ``node`` arguments are records inside the document (a JSON value or an
    HTML element); without one, selectors run against the whole document.
    """

    def __init__(self, fetch: FetchResult, fmt: Format) -> None:
        self.fetch = fetch
        self.format = fmt
        self._module: Any = json if fmt == "json" else _html()
        self.document: Any = self._module.parse(fetch.body, fetch.charset)
        self._select_first = self._module.select_first
        # An empty JSON body does not parse (extract_error); an empty HTML one
        # does, and must give no records rather than one record of nulls.
        self.empty = fmt == "html" and self._module.is_empty(fetch.body)

    @property
    def warning(self) -> str | None:
        """Why this page, though fetched and parsed, is suspect; None when it is not."""
        return EMPTY_BODY if self.empty else None

    @property
    def url(self) -> str:
        """The URL links on this page are relative to."""
        return self.fetch.final_url or self.fetch.url

    def records(self, selector: Selector | None) -> list[Any]:
        if selector is None:
            return [] if self.empty else [self.document]
        if self.format == "html":
            nodes: list[Any] = _html().select_nodes(self.document, selector.query)
            return nodes
        return json.select_records(self.document, selector)

    def header_values(self, name: str) -> list[str]:
        """Every value of a response header (Link, Set-Cookie, ... repeat)."""
        headers = self.fetch.headers
        getall = getattr(headers, "getall", None)
        if getall is not None:
            return list(getall(name, []))
        value = headers.get(name)
        return [] if value is None else [value]

    def first(self, selector: Selector, node: Any = None) -> Any:
        if selector.language == "header":
            return self.fetch.headers.get(selector.query)
        return self.first_match(selector, node)

    def first_match(self, selector: Selector, node: Any = None) -> Any:
        """``first`` for a JMESPath, CSS or XPath selector (not a header): the per-record path."""
        return self._select_first(self.document if node is None else node, selector.query)

    def all(self, selector: Selector, node: Any = None) -> list[Any]:
        if selector.language == "header":
            return list(self.header_values(selector.query))
        found: list[Any] = self._module.select(self.document if node is None else node, selector.query)
        return found

    def text(self, node: Any = None) -> str:
        """The text a lone regex searches: the whole body, or the record's markup/JSON."""
        if node is None:
            body: str = _html().decode(self.fetch.body, self.fetch.charset)
            return body
        text: str = self._module.text_of(node)
        return text
