"""Sitemap memory: the streaming reader stays flat from 10,000 to 1,000,000 URLs.

    python bench/sitemap_memory.py            (no server needed; about a minute)

Each measurement runs in a process of its own, whose peak RSS (ru_maxrss)
is read when it exits:

1. ``parse``: a gzip'd ``<urlset>`` of N URLs (each with a lastmod), read whole
   into memory as the fetcher would hold the body, then read entry by entry
   by ``document.sitemap.SitemapReader``, each entry counted and dropped:
   the reader's own memory, on top of the compressed body.
2. ``outcome``: the same document through ``sitemaps.read_document``, which
   also renders a request per URL: one document's outcome, held until the
   sink saves it. The protocol allows 50,000 URLs per document, so that is
   the most one document of a well-formed sitemap costs.

``baseline`` is a process that loads the same modules and reads nothing.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from run import child_peak_mb  # noqa: E402

PARSE = """
import sys
from crawlrunner.document.sitemap import SitemapReader, chunks_of
body = open(sys.argv[1], "rb").read()
reader = SitemapReader(max_bytes=1 << 40)
count = sum(1 for _ in reader.entries(chunks_of(body)))
assert count == int(sys.argv[2]), count
print(reader.read)
"""

OUTCOME = """
import sys
from crawlrunner.results import FetchResult
from crawlrunner.sitemaps import read_document
from crawlrunner.plan import sitemap_document
from crawlrunner.spec import load_spec_text
spec = load_spec_text(
    "name: m\\ntargets:\\n  - {name: t, seeds: {sitemap: 'https://example.com/s.xml.gz', max_bytes: 1099511627776}}\\n"
)
body = open(sys.argv[1], "rb").read()
plan = sitemap_document(spec.targets[0], "https://example.com/s.xml.gz")
outcome = read_document(plan, FetchResult("t", "GET", plan.url, "", status=200, body=body))
assert len(outcome.derived) == int(sys.argv[2]), len(outcome.derived)
print(0)
"""

BASELINE = """
import crawlrunner.sitemaps, crawlrunner.spec
print(0)
"""


def write_sitemap(path: Path, count: int) -> int:
    """A gzip'd urlset of ``count`` URLs, written a line at a time; its size in bytes."""
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        fh.write('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n')
        for n in range(count):
            fh.write(
                f"  <url><loc>https://example.com/products/{n}/item-{n * 7919 % 100003}</loc>"
                f"<lastmod>2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}</lastmod></url>\n"
            )
        fh.write("</urlset>\n")
    return path.stat().st_size


def measure(code: str, *args: str) -> tuple[float, str]:
    """(peak RSS in MB, what the child printed) of ``code`` run in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    printed = child.stdout.read().strip()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"measurement failed: {args}")
    return child_peak_mb(usage), printed


def main() -> None:
    rows = [("what", "URLs", "gzip'd", "inflated", "peak RSS")]
    baseline, _ = measure(BASELINE)
    rows.append(("baseline", "-", "-", "-", f"{baseline:.0f} MB"))
    with tempfile.TemporaryDirectory() as tmp:
        for count in (10_000, 1_000_000):
            path = Path(tmp) / f"sitemap-{count}.xml.gz"
            size = write_sitemap(path, count)
            peak, inflated = measure(PARSE, str(path), str(count))
            rows.append(
                ("parse", f"{count:,}", f"{size / 1e6:.1f} MB", f"{int(inflated) / 1e6:.1f} MB", f"{peak:.0f} MB")
            )
        for count in (10_000, 50_000):
            path = Path(tmp) / f"sitemap-{count}.xml.gz"
            size = write_sitemap(path, count)
            peak, _ = measure(OUTCOME, str(path), str(count))
            rows.append(("outcome", f"{count:,}", f"{size / 1e6:.1f} MB", "-", f"{peak:.0f} MB"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
