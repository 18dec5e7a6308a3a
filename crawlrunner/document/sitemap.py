"""Sitemap documents (sitemaps.org) read as a stream: entries out as they are read, never a tree.

::

    reader = SitemapReader(max_bytes=50 * 1024 * 1024)
    for entry in reader.entries(chunks_of(body)):   # SitemapEntry(url, lastmod, is_sitemap)
        ...
    reader.cut    # True when max_bytes stopped the reading

A document is fed to expat in chunks. gzip is recognised by its magic bytes
(whatever the URL or the Content-Type says) and inflated a slice at a time,
never more than ``max_bytes`` in all: a gzip bomb stops at the limit, with
no more than one slice of it in memory. Each ``<url>`` (of a ``<urlset>``)
or ``<sitemap>`` (of a ``<sitemapindex>``) is handed out once its end tag is
read, and nothing of it is kept, so memory does not grow with the number of
URLs. Any namespace (the standard one, an old one, none) is accepted.

A DOCTYPE is refused before anything in it is read: a sitemap has no use for
one, and a DTD is where entity expansion (billion laughs) and external
entities come from. Without one, an entity other than XML's five is an error.

A document whose first character is not ``<`` is a text sitemap (the
protocol's other form): one URL per line.
"""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.parsers import expat

from ..errors import ExtractError

GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 64 * 1024  # bytes of a body (or file) fed at a time
INFLATE_BYTES = 256 * 1024  # bytes inflated at a time, at most
# Characters of one <loc> or <lastmod> kept: the protocol says a URL is under
# 2,048; a longer text is not one, and is not allowed to grow in memory.
MAX_FIELD = 8 * 1024
_ROOTS = ("urlset", "sitemapindex")
_ENTRIES = {"url": False, "sitemap": True}  # element → is another sitemap
_XML_STARTS = (b"<", codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    """One ``<url>`` or ``<sitemap>`` of a document: its ``<loc>``, and its ``<lastmod>`` as written."""

    url: str
    lastmod: str | None = None
    is_sitemap: bool = False  # an index's entry: another sitemap to read


def chunks_of(body: bytes) -> Iterator[bytes]:
    """A body in memory, a slice at a time."""
    for start in range(0, len(body), READ_BYTES):
        yield body[start : start + READ_BYTES]


class SitemapReader:
    """Reads one sitemap document, at most ``max_bytes`` of it after decompression.

    ``truncated``: the body is only the start of the document (the fetch
    stopped reading it at the limit), so its early end is the limit's doing,
    not an error. After ``entries`` is exhausted, ``cut`` says whether the
    limit stopped the reading, and ``read`` how many bytes it read.
    """

    def __init__(self, max_bytes: int, *, truncated: bool = False) -> None:
        self.max_bytes = max_bytes
        self.truncated = truncated
        self.read = 0
        self.cut = False

    def entries(self, chunks: Iterable[bytes]) -> Iterator[SitemapEntry]:
        """Every entry, in document order; ``ExtractError`` for a document that is not a sitemap."""
        pieces = self._limited(self._decoded(chunks))
        start = b""
        for piece in pieces:
            start += piece
            if start.removeprefix(codecs.BOM_UTF8).lstrip():
                break
        head = start.removeprefix(codecs.BOM_UTF8).lstrip()
        if not head:
            raise ExtractError("empty sitemap: no <urlset>, <sitemapindex> or URL in it")
        parser: _XmlEntries | _TextEntries = _XmlEntries() if head.startswith(_XML_STARTS) else _TextEntries()
        yield from parser.feed(start)
        for piece in pieces:
            yield from parser.feed(piece)
        if not self.cut:
            yield from parser.close()

    def _decoded(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The document's bytes: inflated when they are gzip's."""
        source = iter(chunks)
        head = b""
        for chunk in source:
            head += chunk
            if len(head) >= len(GZIP_MAGIC):
                break
        if head.startswith(GZIP_MAGIC):
            yield from self._gunzip(head, source)
        else:
            if head:
                yield head
            yield from source

    def _gunzip(self, head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
        inflater = zlib.decompressobj(wbits=31)
        try:
            for chunk in _prepend(head, rest):
                data = chunk
                while data:
                    if inflater.eof:
                        # gzip allows several members one after another; anything else is trailing junk.
                        if not data.startswith(GZIP_MAGIC):
                            return
                        inflater = zlib.decompressobj(wbits=31)
                    # At most INFLATE_BYTES out per call, whatever the ratio:
                    # a bomb never inflates more than a slice at once.
                    piece = inflater.decompress(data, INFLATE_BYTES)
                    if piece:
                        yield piece
                    data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        except zlib.error as exc:
            raise ExtractError(f"not a readable gzip'd sitemap: {exc}") from None
        if not inflater.eof:
            if self.truncated:
                self.cut = True
                return
            raise ExtractError("gzip'd sitemap ends early: the file is truncated")

    def _limited(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        """``pieces`` up to ``max_bytes`` in all; past that, ``cut`` is set and nothing more is read."""
        for piece in pieces:
            room = self.max_bytes - self.read
            if len(piece) > room:
                if room:
                    self.read += room
                    yield piece[:room]
                self.cut = True
                return
            self.read += len(piece)
            yield piece
        if self.truncated and self.read >= self.max_bytes:
            self.cut = True


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class _XmlEntries:
    """expat, fed in chunks: entries come out as their end tags are read."""

    def __init__(self) -> None:
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._entity
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        self._parser = parser
        self._ready: list[SitemapEntry] = []
        self._depth = 0
        self._entry: str | None = None  # "url" or "sitemap" while inside one
        self._fields: dict[str, str] = {}
        self._field: str | None = None  # "loc" or "lastmod" while inside one
        self._text_parts: list[str] = []
        self._text_size = 0

    def feed(self, data: bytes) -> list[SitemapEntry]:
        return self._parse(data, final=False)

    def close(self) -> list[SitemapEntry]:
        return self._parse(b"", final=True)

    def _parse(self, data: bytes, *, final: bool) -> list[SitemapEntry]:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise ExtractError(
                f"not a well-formed sitemap: {expat.ErrorString(exc.code)} at line {exc.lineno}"
            ) from None
        ready, self._ready = self._ready, []
        return ready

    @staticmethod
    def _doctype(name: str, *_: Any) -> None:
        raise ExtractError(
            f"sitemap refused: it declares a DOCTYPE ({name}); sitemaps have none, and a DTD's entities "
            "can expand without bound"
        )

    @staticmethod
    def _entity(name: str, *_: Any) -> None:
        raise ExtractError(f"sitemap refused: it declares an entity ({name})")

    def _start(self, name: str, _attributes: Any) -> None:
        self._depth += 1
        local = name.rpartition(" ")[2]
        if self._depth == 1 and local not in _ROOTS:
            raise ExtractError(f"not a sitemap: the document is <{local}>, not <urlset> or <sitemapindex>")
        if self._depth == 2 and local in _ENTRIES:
            self._entry, self._fields = local, {}
        elif self._depth == 3 and self._entry is not None and local in ("loc", "lastmod"):
            self._field, self._text_parts, self._text_size = local, [], 0

    def _text(self, data: str) -> None:
        if self._field is not None and self._text_size <= MAX_FIELD:
            self._text_parts.append(data)
            self._text_size += len(data)

    def _end(self, _name: str) -> None:
        if self._depth == 3 and self._field is not None:
            if self._text_size <= MAX_FIELD:
                self._fields[self._field] = "".join(self._text_parts).strip()
            self._field, self._text_parts = None, []
        elif self._depth == 2 and self._entry is not None:
            url = self._fields.get("loc")
            if url:
                self._ready.append(SitemapEntry(url, self._fields.get("lastmod") or None, _ENTRIES[self._entry]))
            self._entry = None
        self._depth -= 1


class _TextEntries:
    """A text sitemap: one URL per line (UTF-8)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[SitemapEntry]:
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > MAX_FIELD:
            self._rest = b""  # no URL is that long: the line is dropped, not kept growing
        return [entry for line in lines if (entry := _line_entry(line)) is not None]

    def close(self) -> list[SitemapEntry]:
        entry = _line_entry(self._rest)
        self._rest = b""
        return [entry] if entry is not None else []


def _line_entry(line: bytes) -> SitemapEntry | None:
    text = line.decode("utf-8", errors="replace").strip().removeprefix("\ufeff")
    return SitemapEntry(text) if text and len(text) <= MAX_FIELD else None


def modified_since(lastmod: str | None, since: datetime) -> bool:
    """Whether an entry's ``lastmod`` (W3C datetime: a year, a month, a date, or a date-time) is not older than ``since``.

    A partial date counts as its whole period (``2024-05`` is any time in May
    2024); a time without a zone is UTC. An entry without a readable lastmod
    is kept: nothing says it is old.
    """
    if not lastmod:
        return True
    period = _period(lastmod)
    if period is None:
        return True
    start, end = period
    return end > since if end is not None else start >= since


def _period(text: str) -> tuple[datetime, datetime | None] | None:
    """(start, end) of a W3C datetime; end is None for a full date-time (a point in time)."""
    text = text.strip()
    try:
        if len(text) == 4 and text.isdigit():  # YYYY
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7 and text[4] == "-":  # YYYY-MM
            start = datetime(int(text[:4]), int(text[5:]), 1, tzinfo=UTC)
            return start, datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
        if len(text) == 10:  # YYYY-MM-DD
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)), None
