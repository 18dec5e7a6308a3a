"""The test server: routes named for the behaviour they show.

Served for real on 127.0.0.1 by the fixtures in conftest.py. Routes that
count or measure take a ``key`` so tests sharing the server never share
counters.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

from aiohttp import web

hits: Counter[str] = Counter()
in_flight: Counter[str] = Counter()
peak_in_flight: defaultdict[str, int] = defaultdict(int)


async def json_list(request: web.Request) -> web.Response:
    """/json/list/{page}?size=N: N items with ids continuing across pages."""
    page = int(request.match_info["page"])
    size = int(request.query.get("size", "10"))
    start = (page - 1) * size + 1
    items = [
        {"id": i, "name": f"item {i}", "price": f"{i}.50", "tags": ["t", str(i)]} for i in range(start, start + size)
    ]
    return web.json_response({"page": page, "items": items})


async def json_item(request: web.Request) -> web.Response:
    item_id = int(request.match_info["id"])
    return web.json_response({"id": item_id, "name": f"item {item_id}", "active": item_id % 2 == 0})


async def html_page(request: web.Request) -> web.Response:
    page_id = int(request.match_info["id"])
    links = "".join(f"<li class='row' data-n='{n}'><a href='/html/{n}'>Row {n}</a></li>" for n in range(3))
    text = (
        f"<html><head><title>Page {page_id}</title></head><body>"
        f"<h1>  Page <em>{page_id}</em> </h1><p class='price' data-value='{page_id}.25'>€{page_id}.25</p>"
        f"<ul>{links}</ul></body></html>"
    )
    return web.Response(text=text, content_type="text/html")


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.json_response({"status": code}, status=code)


async def slow(request: web.Request) -> web.Response:
    """/slow/{key}/{seconds}: answers after a delay, tracking concurrency per key."""
    key = request.match_info["key"]
    hits[key] += 1
    in_flight[key] += 1
    peak_in_flight[key] = max(peak_in_flight[key], in_flight[key])
    try:
        await asyncio.sleep(float(request.match_info["seconds"]))
    finally:
        in_flight[key] -= 1
    return web.json_response({"key": key, "n": hits[key]})


async def big(request: web.Request) -> web.Response:
    size = int(request.match_info["size"])
    return web.Response(body=b"x" * size, content_type="application/octet-stream")


async def echo(request: web.Request) -> web.Response:
    """Everything the client sent, as JSON."""
    body = await request.text()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": body,
        }
    )


async def counter(request: web.Request) -> web.Response:
    """/hits/{key}: how many times /slow/{key}/... was hit."""
    key = request.match_info["key"]
    return web.json_response({"hits": hits[key], "peak": peak_in_flight[key]})


ITEM_COUNT = 1000
PER_PAGE = 40  # 1,000 items over 25 pages


def _items(start: int, count: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"item {i}"} for i in range(start, min(start + count, ITEM_COUNT))]


async def items_next(request: web.Request) -> web.Response:
    """next_url style: the body says where the next page is."""
    page = int(request.query.get("page", "1"))
    items = _items((page - 1) * PER_PAGE, PER_PAGE)
    more = page * PER_PAGE < ITEM_COUNT
    return web.json_response({"items": items, "next": f"/items/next?page={page + 1}" if more else None})


async def items_link(request: web.Request) -> web.Response:
    """link_header style: RFC 8288 Link header with rel="next" (and rel="last")."""
    page = int(request.query.get("page", "1"))
    headers = {}
    links = [f'</items/link?page={ITEM_COUNT // PER_PAGE}>; rel="last"']
    if page * PER_PAGE < ITEM_COUNT:
        links.insert(0, f'<{request.url.with_query(page=page + 1)}>; rel="next"')
    headers["Link"] = ", ".join(links)
    return web.json_response(_items((page - 1) * PER_PAGE, PER_PAGE), headers=headers)


async def items_page(request: web.Request) -> web.Response:
    """page_number style: ?page=N&per_page=K; pages past the end are empty."""
    page = int(request.query["page"])
    per_page = int(request.query.get("per_page", str(PER_PAGE)))
    return web.json_response({"total": ITEM_COUNT, "data": _items((page - 1) * per_page, per_page)})


async def items_offset(request: web.Request) -> web.Response:
    offset = int(request.query["offset"])
    limit = int(request.query["limit"])
    return web.json_response({"total": ITEM_COUNT, "results": _items(offset, limit)})


async def items_cursor(request: web.Request) -> web.Response:
    """cursor style: an opaque token, in the query or in the X-Cursor header."""
    token = request.query.get("cursor") or request.headers.get("X-Cursor") or "c0"
    start = int(token[1:])
    following = start + PER_PAGE
    cursor = f"c{following}" if following < ITEM_COUNT else None
    headers = {"X-Next-Cursor": cursor} if cursor else {}
    return web.json_response({"entries": _items(start, PER_PAGE), "next_cursor": cursor}, headers=headers)


async def items_loop(request: web.Request) -> web.Response:
    """A next link that points back at the same page."""
    hits["loop"] += 1
    return web.json_response({"items": _items(0, 5), "next": "/items/loop"})


SITE_NODES = 300


async def site_page(request: web.Request) -> web.Response:
    """/site/{key}/{n}.html: a binary tree of pages with noise links.

    Page n links to its children 2n+1 and 2n+2, back to its parent and the
    root (already seen), to a fragment of itself, and to links that must be
    skipped: mailto:, javascript:, another host, and a robots-disallowed page.
    """
    key, n = request.match_info["key"], int(request.match_info["n"])
    hits[f"site:{key}:{n}"] += 1
    links = [f"{c}.html" for c in (2 * n + 1, 2 * n + 2) if c < SITE_NODES]
    links += [
        f"{(n - 1) // 2}.html" if n else "0.html",
        "0.html",
        f"{n}.html#top",
        "mailto:x@example.com",
        "javascript:void(0)",
        "http://elsewhere.invalid/page.html",
        "private/secret.html",
    ]
    anchors = "".join(f"<a href='{href}'>link</a>" for href in links)
    return web.Response(
        text=f"<html><title>node {n}</title><body><h1>{n}</h1>{anchors}</body></html>", content_type="text/html"
    )


async def site_private(request: web.Request) -> web.Response:
    hits[f"site:{request.match_info['key']}:private"] += 1
    return web.Response(text="<html><title>private</title></html>", content_type="text/html")


async def robots(request: web.Request) -> web.Response:
    hits["robots.txt"] += 1
    return web.Response(text="User-agent: *\nDisallow: /site/*/private/\n")


async def parents(request: web.Request) -> web.Response:
    """100 parents over 5 pages of 20."""
    page = int(request.query.get("page", "1"))
    rows = [{"id": i, "label": f"parent {i}"} for i in range((page - 1) * 20 + 1, min(page * 20, 100) + 1)]
    return web.json_response({"parents": rows})


async def children(request: web.Request) -> web.Response:
    parent = int(request.match_info["id"])
    return web.json_response({"children": [{"n": n, "value": parent * 100 + n} for n in range(10)]})


# Catalogue contents per key, changed by tests between runs: {id: (name, price)}.
catalogues: dict[str, dict[int, tuple[str, float]]] = {}
VERSIONED_ETAG = '"v1"'


async def catalogue(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    hits[f"catalogue:{key}"] += 1
    items = [{"id": i, "name": n, "price": p} for i, (n, p) in sorted(catalogues[key].items())]
    return web.json_response({"items": items})


async def versioned(request: web.Request) -> web.Response:
    """Answers 304 when the client already has the current version."""
    key = request.match_info["key"]
    hits[f"versioned:{key}"] += 1
    if request.headers.get("If-None-Match") == VERSIONED_ETAG:
        return web.Response(status=304, headers={"ETag": VERSIONED_ETAG})
    return web.json_response(
        {"id": 1, "title": "stable"},
        headers={"ETag": VERSIONED_ETAG, "Last-Modified": "Tue, 24 Nov 2026 00:00:00 GMT"},
    )


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/json/list/{page}", json_list)
    app.router.add_get("/json/item/{id}", json_item)
    app.router.add_get("/html/{id}", html_page)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/slow/{key}/{seconds}", slow)
    app.router.add_get("/big/{size}", big)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/hits/{key}", counter)
    app.router.add_get("/items/next", items_next)
    app.router.add_get("/items/link", items_link)
    app.router.add_get("/items/page", items_page)
    app.router.add_get("/items/offset", items_offset)
    app.router.add_get("/items/cursor", items_cursor)
    app.router.add_get("/items/loop", items_loop)
    app.router.add_get("/site/{key}/{n:\\d+}.html", site_page)
    app.router.add_get("/site/{key}/private/{name}", site_private)
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/parents", parents)
    app.router.add_get("/parents/{id}/children", children)
    app.router.add_get("/catalogue/{key}", catalogue)
    app.router.add_get("/versioned/{key}", versioned)
    return app
