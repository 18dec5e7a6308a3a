"""Memory checks: flat RSS as the number of URLs grows, and for a 1 GB download.

    python bench/memory.py          (nginx must be able to start: bash bench/setup.sh)

1. A templated target of N URLs planned and fed through the frontier (every
   request taken and finished, no network): peak RSS for N = 10,000 and
   1,000,000.
2. The 1 GB file of the benchmark site fetched with ``download: true``
   against a 1 KB one: the growth of peak RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import BASE, BIN, REPO, child_peak_mb, start_nginx  # noqa: E402

FEED = """
import asyncio, sys
from crawlrunner.spec import load_spec_text
from crawlrunner.plan import plan_requests
from crawlrunner.backends.local import LocalFrontier, LocalState, numbered
spec = load_spec_text("name: m\\nhttp: {base_url: 'http://127.0.0.1:1'}\\ntargets:\\n  - {name: t, url: '/item/{n}', vars: {n: {from: 1, to: %d}}}\\n")
async def main():
    frontier = LocalFrontier(spec.targets, LocalState(1, start=numbered(plan_requests(spec))))
    taken = 0
    while (plan := await frontier.claim()) is not None:
        taken += 1
        await frontier.complete(plan, [])
    assert taken == %d
asyncio.run(main())
"""


def peak_rss_mb(command: list[str], cwd: Path = REPO) -> float:
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed")
    return child_peak_mb(usage)


def download_spec(tmp: Path, path: str) -> Path:
    spec = tmp / f"download-{path.strip('/').replace('/', '-')}.yaml"
    spec.write_text(
        f"name: dl\nhttp: {{base_url: '{BASE}', download_dir: '{tmp}/files', timeout: {{total: 600}}}}\n"
        f"targets:\n  - {{name: f, url: '{path}', download: true}}\n"
    )
    return spec


def main() -> None:
    for count in (10_000, 1_000_000):
        rss = peak_rss_mb([sys.executable, "-c", FEED % (count, count)])
        print(f"frontier, {count:>9,} URLs: peak RSS {rss:.1f} MB", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nginx = start_nginx(HERE / "site", tmp)
        try:
            small = peak_rss_mb(
                [
                    str(BIN / "crawlrunner"),
                    "run",
                    str(download_spec(tmp, "/json/item/1.json")),
                    "-o",
                    str(tmp / "a.db"),
                    "-q",
                ]
            )
            big = peak_rss_mb(
                [str(BIN / "crawlrunner"), "run", str(download_spec(tmp, "/big.bin")), "-o", str(tmp / "b.db"), "-q"]
            )
            size = (tmp / "files").stat().st_size and sum(p.stat().st_size for p in (tmp / "files").iterdir())
            print(
                f"download 1 KB: peak RSS {small:.1f} MB; 1 GB: {big:.1f} MB (growth {big - small:.1f} MB); bytes on disk {size:,}"
            )
        finally:
            nginx.terminate()
            nginx.wait(10)


if __name__ == "__main__":
    main()
