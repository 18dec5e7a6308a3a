"""Commented starter specs written by ``crawlrunner init``; each validates as written."""

from __future__ import annotations

import re
from pathlib import Path

from ._resources import bundled_path
from .errors import UsageError

JSON_API = """\
# yaml-language-server: $schema={schema}
#
# A paginated JSON API with a bearer token. Check it with
#   crawlrunner validate {file}
# see what it would fetch with
#   crawlrunner plan {file}
# and run it with
#   API_TOKEN=... crawlrunner run {file}
name: {name}
output: {name}.db

http:
  base_url: https://api.example.com/v1/
  headers:
    Accept: application/json
  auth: {{type: bearer, token: "${{env.API_TOKEN:-replace-me}}"}}   # the token comes from the environment
  timeout: {{total: 30}}
  limits: {{connections: 8, per_host: 4}}
  rate_limit: {{per_second: 5}}             # be polite: at most 5 requests a second

targets:
  - name: items
    url: items                              # relative to base_url
    params: {{per_page: 100}}
    paginate: {{type: page_number, param: page}}   # or next_url, link_header, offset, cursor
    extract:
      records: data                         # JMESPath to the list of records
      fields:
        id: {{jmespath: id, type: int, required: true}}
        name: name
        updated_at: {{jmespath: updated_at, type: datetime}}
    mode: upsert                            # one row per id, with a history of changes
    key: [id]
    expect: {{min_records: 1, not_null: [id]}}   # fail loudly (exit 3) if the API changes

  - name: item_details                      # one request per item, as items arrive
    parent: items
    url: items/{{id}}
    extract:
      fields:
        item_id: {{parent: id}}
        description: description
"""

HTML = """\
# yaml-language-server: $schema={schema}
#
# An HTML catalogue: a listing page, a detail page per product, and a crawl of
# the site's documentation pages. Check it with `crawlrunner validate {file}`.
name: {name}
output: {name}.db

http:
  base_url: https://shop.example.com/
  limits: {{connections: 8, per_host: 4}}
  rate_limit: {{min_delay: 0.25}}

targets:
  - name: listing
    url: /products?page={{page}}
    vars: {{page: {{from: 1, to: 5}}}}           # pages 1..5
    extract:
      format: html
      records: li.product                   # one record per product on the page
      fields:
        name: a::text
        link: a::attr(href)
        price: {{css: .price, type: number}}      # "$1,299.00" → 1299.0

  - name: product
    parent: listing
    url_field: link                         # fetch each listing record's link
    extract:
      format: html
      fields:
        title: {{css: h1, required: true}}
        sku: {{xpath: "//dd[@class='sku']/text()"}}
        listed_price: {{parent: price}}

  - name: docs
    url: /docs/
    follow:
      max_depth: 2
      allow: ['/docs/']
      max_pages: 200                        # robots.txt is obeyed
    extract:
      format: html
      fields:
        url: {{meta: url}}
        title: title
"""

GATEWAY = """\
# yaml-language-server: $schema={schema}
#
# Pages fetched through a ScraperAPI-style rendering gateway. The key comes
# from the environment and is never stored:
#   SCRAPERAPI_KEY=... crawlrunner run {file}
name: {name}
output: {name}.db

defaults:
  gateway:
    endpoint: https://api.scraperapi.com/
    api_key: ${{env.SCRAPERAPI_KEY:-replace-me}}
    render: true                            # render JavaScript
    country_code: us
  rate_limit: {{per_second: 2}}             # a 429 from the gateway also slows it down
  retry: {{attempts: 4, max_retry_after: 120}}

targets:
  - name: pages
    urls:
      - https://www.example.com/product/1
      - https://www.example.com/product/2
    extract:
      format: html
      fields:
        title: {{css: h1, required: true}}
        price: {{css: .price, regex: '([0-9.,]+)'}}
        url: {{meta: url}}                  # the real URL, never the gateway's
"""

STARTERS = {"json-api": JSON_API, "html": HTML, "gateway": GATEWAY}


SCHEMA_FILE = "crawlspec.schema.json"  # written next to the spec; the modeline names it relatively


def write_starter(path: Path, kind: str, name: str | None = None, *, force: bool = False) -> list[Path]:
    """Write the ``kind`` starter to ``path``, named ``name`` or after the file; returns the files written.

    The spec's editor modeline points at ``./crawlspec.schema.json``, written
    next to it unless a file of that name is there already (it is never
    overwritten): a relative path works in every checkout, where an absolute
    path into this machine's site-packages would not. An existing ``path`` is
    overwritten only with ``force``.

    Raises ``UsageError`` for an existing file (without ``force``), a name
    that cannot name a database file, or a file that cannot be written.
    """
    if path.exists() and not force:
        raise UsageError(f"{path} exists; not overwriting it (choose another name, or --force)")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise UsageError(
            f"--name: letters, digits, '_', '.' and '-' only (it also names the database file), got {name!r}"
        )
    crawl_name = name or re.sub(r"[^A-Za-z0-9_-]", "_", path.stem) or "crawl"
    text = STARTERS[kind].format(name=crawl_name, file=path, schema=f"./{SCHEMA_FILE}")
    written = [_write(path, text)]
    schema = path.parent / SCHEMA_FILE
    if not schema.exists():
        written.append(_write(schema, bundled_path("schemas", SCHEMA_FILE).read_text(encoding="utf-8")))
    return written


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    return path
