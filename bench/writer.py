"""The SQLite writer's cost per request, without HTTP: outcomes built as the engine builds them, written by the sink.

    python bench/writer.py [--requests 20000] [--reps 5] [--spec specs/bench-json-detail.yaml]

For each rep: the spec's start requests are claimed from a fresh run's
frontier, each gets a response (``--body``: one of the bench site's JSON
documents) and is extracted as the engine would (``extract.process``), and the
outcomes go through the run's real sink (its queue, batches, transactions)
into a new SQLite file. Reported: CPU seconds of the whole process (every
thread: SQLite works on aiosqlite's) per request, for the whole pass and for
the extraction alone (the same pass with no sink), and the difference, which
is the frontier's and the writer's share. Medians of ``--reps``; CPU time, not
wall time, so a busy machine moves the numbers less. Instruction counts for
an A/B: run it under ``valgrind --tool=callgrind`` with ``--reps 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: an A/B can point it at another tree

from crawlrunner.backends import open_backend  # noqa: E402
from crawlrunner.backends.base import Start  # noqa: E402
from crawlrunner.extract import process  # noqa: E402
from crawlrunner.results import FetchResult, utc_now  # noqa: E402
from crawlrunner.spec import load_spec  # noqa: E402

BODY = (
    b'{"id": 1, "name": "item 1", "price": 0.37, "sku": "SKU-000001", "tags": ["bench", "t1"], '
    b'"description": "' + b"crawlrunner benchmark text " * 30 + b'"}'
)


async def one_pass(spec_path: Path, requests: int, *, write: bool, every: int) -> float:
    """CPU seconds of one pass over ``requests`` start requests (written to a new file when ``write``)."""
    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory() as folder:
        async with open_backend(Path(folder) / "bench.db") as backend:
            run = await backend.open_run(spec, list(spec.targets), Start.FRESH)
            writer = asyncio.create_task(run.sink.run()) if write else None
            started = time.process_time()
            for _ in range(requests):
                plan = await run.frontier.claim()
                if plan is None:
                    break
                fetch = FetchResult(
                    plan.target.name, plan.method, plan.url, utc_now(),
                    status=200, content_type="application/json", body=BODY, elapsed=0.001,
                )  # fmt: skip
                outcome = process(plan, fetch)
                outcome.derived = run.frontier.admit(plan, outcome)
                if write:
                    await run.sink.write(outcome)
                if plan.seq is not None and plan.seq % every == 0:
                    await asyncio.sleep(0.0005)  # a fetch's wait: the writer takes what has queued
                await run.frontier.complete(plan, outcome.derived)
            if writer is not None:
                await run.sink.close()
                await writer
            spent = time.process_time() - started
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--every", type=int, default=4,
        help="outcomes written between the writer's turns: a crawl's batch size (1-4 at bench speeds; 10**9: one batch)",
    )  # fmt: skip
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "bench-json-detail.yaml")
    args = parser.parse_args()
    whole, extraction = [], []
    for _ in range(args.reps):  # interleaved, so a slow moment falls on both
        whole.append(asyncio.run(one_pass(args.spec, args.requests, write=True, every=args.every)))
        extraction.append(asyncio.run(one_pass(args.spec, args.requests, write=False, every=args.every)))
    per = 1e6 / args.requests
    w, e = statistics.median(whole) * per, statistics.median(extraction) * per
    print(f"{args.spec.name}, {args.requests:,} requests, batches of about {args.every}, medians of {args.reps}\n")
    print("| pass | CPU µs/request |\n| --- | --- |")
    print(f"| claim, extract, admit, write (all threads) | {w:.1f} |")
    print(f"| claim, extract, admit (no sink) | {e:.1f} |")
    print(f"| the sink: queue, batches, SQLite | {w - e:.1f} |")


if __name__ == "__main__":
    main()
