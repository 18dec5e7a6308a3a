"""A small, deterministic shop for the offline demo and the tests.

JSON API:
    GET /api/products?page=N         a page of 10 products, with "next"
    GET /api/products/{id}           one product in detail (404 if unknown)
    POST /api/search                 {"query": "...", "page": N}: matching products, 5 a page
HTML:
    GET /shop/                       the catalogue: a list of linked products
    GET /shop/products/{id}.html     a product page: title, price, SKU, links
    GET /docs/                       a small documentation site (pages link each other)
    GET /robots.txt                  disallows /docs/drafts/

Data is generated from the product id alone, so every run sees the same shop.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

PRODUCT_COUNT = 30
PAGE_SIZE = 10

_ADJECTIVES = ("Sturdy", "Compact", "Deluxe", "Classic", "Nimble", "Quiet")
_NOUNS = ("Kettle", "Lamp", "Backpack", "Teapot", "Notebook", "Chair", "Umbrella", "Clock", "Mug", "Scarf")
_CATEGORIES = ("kitchen", "home", "outdoor", "office")


@dataclass(frozen=True)
class Product:
    id: int

    @property
    def name(self) -> str:
        return f"{_ADJECTIVES[self.id % len(_ADJECTIVES)]} {_NOUNS[self.id % len(_NOUNS)]} {self.id}"

    @property
    def price(self) -> float:
        return round(4.5 + (self.id * 37 % 100) + (self.id % 4) * 0.25, 2)

    @property
    def category(self) -> str:
        return _CATEGORIES[self.id % len(_CATEGORIES)]

    @property
    def in_stock(self) -> bool:
        return self.id % 5 != 0

    @property
    def sku(self) -> str:
        return f"SKU-{self.id:05d}"

    def summary(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "price": self.price, "category": self.category}

    def detail(self) -> dict[str, object]:
        return {
            **self.summary(),
            "sku": self.sku,
            "in_stock": self.in_stock,
            "description": f"The {self.name.lower()} is a demo product for crawlrunner.",
            "tags": [self.category, "demo"],
        }


def _product(request: web.Request) -> Product:
    try:
        product_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not 1 <= product_id <= PRODUCT_COUNT:
        raise web.HTTPNotFound()
    return Product(product_id)


async def list_products(request: web.Request) -> web.Response:
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        raise web.HTTPBadRequest(text="page must be a number") from None
    first = (page - 1) * PAGE_SIZE + 1
    ids = range(first, min(first + PAGE_SIZE, PRODUCT_COUNT + 1))
    has_next = first + PAGE_SIZE <= PRODUCT_COUNT
    body = {
        "page": page,
        "total": PRODUCT_COUNT,
        "items": [Product(i).summary() for i in ids],
        "next": f"/api/products?page={page + 1}" if has_next else None,
    }
    return web.json_response(body, dumps=json.dumps)


async def product_detail(request: web.Request) -> web.Response:
    return web.json_response(_product(request).detail())


def _page(title: str, body: str) -> web.Response:
    text = (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} | Demo Shop</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return web.Response(text=text, content_type="text/html")


async def catalogue(request: web.Request) -> web.Response:
    items = "\n".join(
        f"  <li class='product' data-id='{p.id}'><a href='/shop/products/{p.id}.html'>{html.escape(p.name)}</a>"
        f" <span class='price'>${p.price:.2f}</span></li>"
        for p in map(Product, range(1, PRODUCT_COUNT + 1))
    )
    return _page("Catalogue", f"<h1>Catalogue</h1>\n<ul class='products'>\n{items}\n</ul>")


async def product_page(request: web.Request) -> web.Response:
    p = _product(request)
    neighbours = [Product(i) for i in (p.id - 1, p.id + 1) if 1 <= i <= PRODUCT_COUNT]
    links = " ".join(
        f"<a class='related' href='/shop/products/{n.id}.html'>{html.escape(n.name)}</a>" for n in neighbours
    )
    stock = "In stock" if p.in_stock else "Sold out"
    body = (
        f"<nav><a href='/shop/'>Catalogue</a></nav>\n"
        f"<article class='product' id='product-{p.id}'>\n"
        f"  <h1 class='title'>{html.escape(p.name)}</h1>\n"
        f"  <p class='price' data-price='{p.price:.2f}'>${p.price:.2f}</p>\n"
        f"  <p class='stock'>{stock}</p>\n"
        f"  <dl><dt>SKU</dt><dd class='sku'>{p.sku}</dd><dt>Category</dt><dd>{p.category}</dd></dl>\n"
        f"  <p class='description'>{html.escape(p.detail()['description'])}</p>\n"  # type: ignore[arg-type]
        f"</article>\n<footer>{links}</footer>"
    )
    return _page(p.name, body)


async def search(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        query = str(body.get("query", "")).lower()
        page = max(1, int(body.get("page", 1)))
    except (ValueError, TypeError, AttributeError):
        raise web.HTTPBadRequest(text="expected a JSON body with query and page") from None
    matches = [p for p in map(Product, range(1, PRODUCT_COUNT + 1)) if query in p.name.lower()]
    window = matches[(page - 1) * 5 : page * 5]
    return web.json_response(
        {"query": query, "page": page, "total": len(matches), "results": [p.summary() for p in window]}
    )


DOCS = {
    "index": ("Documentation", ["getting-started", "specs", "storage"]),
    "getting-started": ("Getting started", ["index", "specs", "drafts/next-release"]),
    "specs": ("Writing specs", ["index", "pagination", "storage"]),
    "pagination": ("Pagination", ["specs", "index"]),
    "storage": ("Storage", ["index", "getting-started"]),
}


async def docs_page(request: web.Request) -> web.Response:
    slug = request.match_info.get("slug") or "index"
    if slug not in DOCS:
        raise web.HTTPNotFound()
    title, links = DOCS[slug]
    anchors = "".join(f"<li><a href='/docs/{target}.html'>{target}</a></li>" for target in links)
    return _page(title, f"<h1>{html.escape(title)}</h1><nav><ul>{anchors}</ul></nav><a href='/shop/'>Shop</a>")


async def robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow: /docs/drafts/\n")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/api/search", search)
    app.router.add_get("/docs/", docs_page)
    app.router.add_get("/docs/{slug}.html", docs_page)
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/api/products", list_products)
    app.router.add_get("/api/products/{id}", product_detail)
    app.router.add_get("/shop/", catalogue)
    app.router.add_get("/shop/products/{id}.html", product_page)
    return app


@asynccontextmanager
async def serve(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the demo shop; yields its base URL (an ephemeral port by default)."""
    runner = web.AppRunner(make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=2)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        sockets = runner.addresses
        bound_port = sockets[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()
