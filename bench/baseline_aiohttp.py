"""The careful hand-written aiohttp script crawlrunner is measured against.

One session, a bounded worker pool fed by a queue, the same fields
extracted, rows written to SQLite with batched executemany.

    python bench/baseline_aiohttp.py KIND BASE_URL CONCURRENCY DB [uvloop]

With ``uvloop`` it runs on uvloop's event loop: the reference for
crawlrunner with its speed-ups installed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys

import aiohttp
from parsel import Selector

COUNTS = {"json-detail": 20_000, "json-list": 2_000, "html": 20_000}
BATCH = 500


def urls(kind: str, base: str) -> list[str]:
    path = {"json-detail": "/json/item/{}.json", "json-list": "/json/list/{}.json", "html": "/html/p/{}.html"}[kind]
    return [base + path.format(n) for n in range(1, COUNTS[kind] + 1)]


def extract(kind: str, body: bytes) -> list[tuple[object, ...]]:
    if kind == "json-detail":
        doc = json.loads(body)
        return [(doc["id"], doc["name"], doc["price"], doc["sku"])]
    if kind == "json-list":
        return [(i["id"], i["name"], i["price"]) for i in json.loads(body)["items"]]
    page = Selector(text=body.decode("utf-8"))
    return [(page.css("h1.title::text").get(), float(page.css("p.price::attr(data-price)").get()),
             " ".join(page.css("div.description p::text").get("").split()))]  # fmt: skip


async def main(kind: str, base: str, concurrency: int, db: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    columns = {"json-detail": 4, "json-list": 3, "html": 3}[kind]
    conn.execute(f"CREATE TABLE rows (url, {', '.join(f'c{i}' for i in range(columns))})")
    insert = f"INSERT INTO rows VALUES ({', '.join('?' for _ in range(columns + 1))})"
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency * 2)
    pending: list[tuple[object, ...]] = []

    async def produce() -> None:
        for url in urls(kind, base):
            await queue.put(url)
        for _ in range(concurrency):
            await queue.put(None)

    async def work(session: aiohttp.ClientSession) -> None:
        while (url := await queue.get()) is not None:
            async with session.get(url) as response:
                body = await response.read()
            pending.extend((url, *row) for row in extract(kind, body))
            if len(pending) >= BATCH:
                conn.executemany(insert, pending)
                conn.commit()
                pending.clear()

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(produce(), *(work(session) for _ in range(concurrency)))
    conn.executemany(insert, pending)
    conn.commit()
    conn.close()


if __name__ == "__main__":
    run = main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
    if sys.argv[5:] == ["uvloop"]:
        import uvloop

        uvloop.run(run)
    else:
        asyncio.run(run)
