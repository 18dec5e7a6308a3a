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
    items = [{"id": i, "name": f"item {i}", "price": f"{i}.50", "tags": ["t", str(i)]} for i in range(start, start + size)]
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
    return app
