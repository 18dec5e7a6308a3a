"""The same crawl as a Scrapy spider with an SQLite pipeline (bench extra only).

Usage: ``python bench/scrapy_bench.py KIND BASE_URL CONCURRENCY DB``
"""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import Any

import scrapy
from baseline_aiohttp import COUNTS, urls
from scrapy.crawler import CrawlerProcess

BATCH = 500


class SQLitePipeline:
    @classmethod
    def from_crawler(cls, crawler: Any) -> SQLitePipeline:
        pipeline = cls()
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self) -> None:
        spider = self.crawler.spider
        self.conn = sqlite3.connect(spider.db)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.columns = {"json-detail": 4, "json-list": 3, "html": 3}[spider.kind]
        self.conn.execute(f"CREATE TABLE rows (url, {', '.join(f'c{i}' for i in range(self.columns))})")
        self.insert = f"INSERT INTO rows VALUES ({', '.join('?' for _ in range(self.columns + 1))})"
        self.pending: list[tuple[Any, ...]] = []

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        self.pending.append(item["row"])
        if len(self.pending) >= BATCH:
            self.conn.executemany(self.insert, self.pending)
            self.conn.commit()
            self.pending.clear()
        return item

    def close_spider(self) -> None:
        self.conn.executemany(self.insert, self.pending)
        self.conn.commit()
        self.conn.close()


class BenchSpider(scrapy.Spider):
    name = "bench"

    def __init__(self, kind: str, base: str, db: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.base, self.db = kind, base, db

    async def start(self) -> Any:
        for url in urls(self.kind, self.base):
            yield scrapy.Request(url, dont_filter=True)

    def parse(self, response: Any) -> Any:
        if self.kind == "json-detail":
            doc = json.loads(response.body)
            yield {"row": (response.url, doc["id"], doc["name"], doc["price"], doc["sku"])}
        elif self.kind == "json-list":
            for i in json.loads(response.body)["items"]:
                yield {"row": (response.url, i["id"], i["name"], i["price"])}
        else:
            yield {"row": (response.url, response.css("h1.title::text").get(),
                           float(response.css("p.price::attr(data-price)").get()),
                           " ".join(response.css("div.description p::text").get("").split()))}  # fmt: skip


if __name__ == "__main__":
    kind, base, concurrency, db = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    process = CrawlerProcess(
        settings={
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
            "DOWNLOAD_DELAY": 0,
            "ROBOTSTXT_OBEY": False,
            "AUTOTHROTTLE_ENABLED": False,
            "LOG_LEVEL": "ERROR",
            "TELNETCONSOLE_ENABLED": False,
            "COOKIES_ENABLED": False,
            "RETRY_ENABLED": False,
            "ITEM_PIPELINES": {"scrapy_bench.SQLitePipeline": 100},
            "REACTOR_THREADPOOL_MAXSIZE": 4,
        }  # fmt: skip
    )
    process.crawl(BenchSpider, kind=kind, base=base, db=db)
    process.start()
    assert COUNTS[kind]
