"""Generate the benchmark's local site (not committed; see bench/README.md).

json/item/{n}.json     20,000 detail documents, ~1 KB each
html/p/{n}.html        20,000 product pages, ~6 KB, title, price, description, ~20 links
json/list/{n}.json      2,000 list pages of 50 records each
big.bin                 1 GB, sparse (no disk used until read)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DETAILS, PAGES, LISTS, PER_LIST = 20_000, 20_000, 2_000, 50
LOREM = ("crawlrunner benchmark text " * 40).strip()


def generate(root: Path) -> None:
    (root / "json" / "item").mkdir(parents=True, exist_ok=True)
    (root / "json" / "list").mkdir(parents=True, exist_ok=True)
    (root / "html" / "p").mkdir(parents=True, exist_ok=True)
    for n in range(1, DETAILS + 1):
        doc = {"id": n, "name": f"item {n}", "price": round(n * 0.37 % 500, 2), "sku": f"SKU-{n:06d}",
               "tags": ["bench", f"t{n % 17}"], "description": LOREM[: 700 + n % 200]}  # fmt: skip
        (root / "json" / "item" / f"{n}.json").write_text(json.dumps(doc))
    for n in range(1, LISTS + 1):
        first = (n - 1) * PER_LIST + 1
        items = [
            {"id": i, "name": f"item {i}", "price": round(i * 0.37 % 500, 2)} for i in range(first, first + PER_LIST)
        ]
        (root / "json" / "list" / f"{n}.json").write_text(json.dumps({"page": n, "items": items}))
    for n in range(1, PAGES + 1):
        links = "".join(f"<li><a href='/html/p/{(n * 7 + k) % PAGES + 1}.html'>Related {k}</a></li>" for k in range(20))
        body = (
            f"<!doctype html><html><head><title>Product {n}</title></head><body>"
            f"<h1 class='title'>Product {n}</h1><p class='price' data-price='{n * 0.37 % 500:.2f}'>${n * 0.37 % 500:.2f}</p>"
            f"<div class='description'><p>{LOREM}</p><p>{LOREM}</p><p>{LOREM[:1200]}</p></div>"
            f"<ul class='related'>{links}</ul></body></html>"
        )
        (root / "html" / "p" / f"{n}.html").write_text(body)
    with (root / "big.bin").open("wb") as fh:
        fh.truncate(1 << 30)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "site"))
    generate(target)
    print(f"site generated in {target}")
