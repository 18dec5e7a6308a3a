"""The streaming sitemap reader, without sockets: forms, namespaces, gzip, limits, refusals, lastmod."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from crawlrunner.document.sitemap import MAX_FIELD, SitemapEntry, SitemapReader, chunks_of, modified_since
from crawlrunner.errors import ExtractError

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
URLSET = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="{NS}" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>
      https://example.com/a?x=1&amp;y=2
    </loc>
    <lastmod>2024-05-01</lastmod>
    <changefreq>daily</changefreq>
    <image:image><image:loc>https://example.com/a.png</image:loc></image:image>
  </url>
  <url><loc><![CDATA[https://example.com/b]]></loc></url>
  <url><lastmod>2024-05-01</lastmod></url>
</urlset>
"""
EXPECTED = [
    SitemapEntry("https://example.com/a?x=1&y=2", "2024-05-01"),
    SitemapEntry("https://example.com/b"),
]


def read(body: bytes, max_bytes: int = 1 << 30, *, truncated: bool = False) -> tuple[list[SitemapEntry], SitemapReader]:
    reader = SitemapReader(max_bytes, truncated=truncated)
    return list(reader.entries(chunks_of(body))), reader


def test_a_urlset_gives_each_url_with_its_lastmod_and_ignores_the_rest() -> None:
    entries, reader = read(URLSET.encode())

    assert entries == EXPECTED  # whitespace trimmed, entities and CDATA read, image:loc and empty entries left out
    assert (reader.cut, reader.read) == (False, len(URLSET.encode()))


@pytest.mark.parametrize(
    "root",
    [
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
        "<urlset>",  # no namespace
        '<sm:urlset xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">',  # a prefix
        '<urlset xmlns="http://www.google.com/schemas/sitemap/0.84">',  # an old namespace
    ],
)
def test_any_namespace_is_read(root: str) -> None:
    close = "</sm:urlset>" if root.startswith("<sm:") else "</urlset>"
    prefix = "sm:" if root.startswith("<sm:") else ""
    body = f"{root}<{prefix}url><{prefix}loc>https://example.com/a</{prefix}loc></{prefix}url>{close}"

    assert read(body.encode())[0] == [SitemapEntry("https://example.com/a")]


def test_an_index_gives_sitemaps() -> None:
    body = f"""<sitemapindex xmlns="{NS}">
      <sitemap><loc>https://example.com/s1.xml.gz</loc><lastmod>2024-05-01T10:00:00Z</lastmod></sitemap>
      <sitemap><loc>https://example.com/s2.xml</loc></sitemap>
    </sitemapindex>"""

    assert read(body.encode())[0] == [
        SitemapEntry("https://example.com/s1.xml.gz", "2024-05-01T10:00:00Z", is_sitemap=True),
        SitemapEntry("https://example.com/s2.xml", is_sitemap=True),
    ]


def test_gzip_is_told_by_its_bytes_and_several_members_are_read() -> None:
    half = URLSET.encode()
    body = gzip.compress(half[:200]) + gzip.compress(half[200:])

    entries, reader = read(body)

    assert entries == EXPECTED
    assert reader.read == len(half)  # counted inflated


def test_chunk_boundaries_do_not_matter() -> None:
    body = gzip.compress(URLSET.encode())
    reader = SitemapReader(1 << 30)

    assert list(reader.entries(body[i : i + 1] for i in range(len(body)))) == EXPECTED


def test_entries_come_out_while_the_document_is_still_being_read() -> None:
    """A stream: the first entry is handed out before the rest of the body is even produced."""
    produced: list[int] = []

    def body() -> Iterator[bytes]:
        yield f'<urlset xmlns="{NS}">'.encode()
        for n in range(1_000):
            produced.append(n)
            yield f"<url><loc>https://example.com/{n}</loc></url>".encode()
        yield b"</urlset>"

    entries = SitemapReader(1 << 30).entries(body())
    first = next(entries)

    assert first.url == "https://example.com/0" and len(produced) < 5
    assert sum(1 for _ in entries) == 999


def test_a_text_sitemap_is_one_url_per_line() -> None:
    body = "\ufeffhttps://example.com/1\r\n\n  https://example.com/2  \nhttps://example.com/3".encode()

    assert [e.url for e in read(body)[0]] == [f"https://example.com/{n}" for n in (1, 2, 3)]


def test_max_bytes_stops_reading_and_keeps_what_came_before() -> None:
    body = URLSET.encode()
    cut_at = body.index(b"<url><loc><![CDATA[")

    entries, reader = read(body, max_bytes=cut_at)

    assert entries == EXPECTED[:1]
    assert (reader.cut, reader.read) == (True, cut_at)


def test_a_gzip_bomb_stops_at_max_bytes() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(b"<urlset>") + b"".join(packer.compress(b" " * (1 << 20)) for _ in range(256))
    bomb += packer.flush()  # 256 MB of spaces, 0.26 MB gzip'd

    entries, reader = read(bomb, max_bytes=1 << 20)

    assert entries == [] and reader.cut and reader.read == 1 << 20


def test_a_gzip_body_cut_by_the_fetch_is_a_cut_else_an_error() -> None:
    urls = "".join(f"<url><loc>https://example.com/{n}</loc></url>" for n in range(1_000))
    whole = gzip.compress(f"<urlset>{urls}</urlset>".encode())
    body = whole[: len(whole) // 2]

    entries, reader = read(body, truncated=True)
    assert reader.cut and 0 < len(entries) < 1_000
    assert [e.url for e in entries] == [f"https://example.com/{n}" for n in range(len(entries))]
    with pytest.raises(ExtractError, match="gzip'd sitemap ends early: the file is truncated"):
        read(body)


def test_a_loc_too_long_to_be_a_url_is_dropped_not_kept_growing() -> None:
    body = f"<urlset><url><loc>https://example.com/{'a' * (MAX_FIELD * 4)}</loc></url>"
    body += "<url><loc>https://example.com/b</loc></url></urlset>"

    assert read(body.encode())[0] == [SitemapEntry("https://example.com/b")]


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">' for i in range(1, 10))
    + "]><urlset><url><loc>&lol9;</loc></url></urlset>"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (BILLION_LAUGHS, r"sitemap refused: it declares a DOCTYPE \(urlset\)"),
        ('<!DOCTYPE urlset SYSTEM "file:///etc/passwd"><urlset/>', "sitemap refused: it declares a DOCTYPE"),
        ("<urlset><url><loc>&external;</loc></url></urlset>", "not a well-formed sitemap: undefined entity at line 1"),
        (
            "<html><body>Not found</body></html>",
            "not a sitemap: the document is <html>, not <urlset> or <sitemapindex>",
        ),
        ("<urlset><url><loc>https://example.com/a</url></urlset>", "not a well-formed sitemap: mismatched tag"),
        ("  \n ", "empty sitemap"),
    ],
)
def test_what_is_refused(body: str, message: str) -> None:
    with pytest.raises(ExtractError, match=message):
        read(body.encode())


def test_a_broken_gzip_is_an_extract_error() -> None:
    with pytest.raises(ExtractError, match="not a readable gzip'd sitemap"):
        read(b"\x1f\x8b\x08\x00garbage-garbage-garbage")


SINCE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lastmod", "kept"),
    [
        (None, True),
        ("", True),
        ("whenever", True),  # unreadable: nothing says it is old
        ("2023", False),
        ("2024", True),  # the year 2024 reaches past noon on May 1st
        ("2024-04", False),
        ("2024-05", True),
        ("2024-04-30", False),
        ("2024-05-01", True),  # that day, as a whole
        ("2024-05-01T11:59:59Z", False),
        ("2024-05-01T12:00:00Z", True),
        ("2024-05-01T13:30+02:00", False),  # 11:30 UTC
        ("2024-05-01T14:30:00.5+02:00", True),
        ("2024-05-01T12:00:00", True),  # no zone: UTC
        ("2024-12-31T23:59:59z", True),
    ],
)
def test_modified_since_reads_every_w3c_form_as_the_period_it_names(lastmod: str | None, kept: bool) -> None:
    assert modified_since(lastmod, SINCE) is kept
