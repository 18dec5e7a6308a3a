"""crawlrunner: declarative YAML crawl specs, a pooled aiohttp engine, SQLite output.

The public API is small: load and validate a spec, then run it::

    import crawlrunner

    spec = crawlrunner.load_spec("specs/shop.yaml")  # or YAML text, or a dict
    result = crawlrunner.run(spec, output="shop.db")  # in a notebook too; run_async to await
    print(result.totals.records)

What the commands show is data here too: ``preview_plan`` (``crawlrunner
plan``), ``try_page`` (``crawlrunner try``: one page fetched and extracted, a
``PageTrial``), and ``query``, ``export``, ``list_runs`` and ``changes``, which
read a crawl database and return a ``Table`` (see ``crawlrunner.read``)::

    for name, price in crawlrunner.query("shop.db", "SELECT name, price FROM products LIMIT 5"):
        print(name, price)

Names are imported lazily so that ``crawlrunner validate`` does not pay for
aiohttp, parsel and aiosqlite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CrawlRunnerError",
    "CursorPlan",
    "FetchError",
    "PageTrial",
    "PlannedRequest",
    "RunResult",
    "SincePlan",
    "Spec",
    "SpecError",
    "SpecProblem",
    "StorageError",
    "Table",
    "TargetPlan",
    "UnknownTargetError",
    "UsageError",
    "__version__",
    "changes",
    "export",
    "export_parquet",
    "list_runs",
    "load_spec",
    "preview_plan",
    "query",
    "reextract",
    "report",
    "run",
    "run_async",
    "stop_run",
    "try_page",
    "try_page_async",
]

_LAZY = {
    "CrawlRunnerError": "crawlrunner.errors",
    "FetchError": "crawlrunner.errors",
    "SpecError": "crawlrunner.errors",
    "SpecProblem": "crawlrunner.errors",
    "StorageError": "crawlrunner.errors",
    "UnknownTargetError": "crawlrunner.errors",
    "UsageError": "crawlrunner.errors",
    "Spec": "crawlrunner.spec.model",
    "load_spec": "crawlrunner.spec",
    "RunResult": "crawlrunner.api",
    "reextract": "crawlrunner.api",
    "run": "crawlrunner.api",
    "run_async": "crawlrunner.api",
    "stop_run": "crawlrunner.api",
    "CursorPlan": "crawlrunner.preview",
    "PlannedRequest": "crawlrunner.preview",
    "SincePlan": "crawlrunner.preview",
    "TargetPlan": "crawlrunner.preview",
    "preview_plan": "crawlrunner.preview",
    "Table": "crawlrunner.read",
    "changes": "crawlrunner.read",
    "export": "crawlrunner.read",
    "export_parquet": "crawlrunner.read",
    "list_runs": "crawlrunner.read",
    "query": "crawlrunner.read",
    "report": "crawlrunner.run_report",
    "PageTrial": "crawlrunner.trial",
    "try_page": "crawlrunner.trial",
    "try_page_async": "crawlrunner.trial",
}

if TYPE_CHECKING:
    from .api import RunResult, reextract, run, run_async, stop_run
    from .errors import (
        CrawlRunnerError,
        FetchError,
        SpecError,
        SpecProblem,
        StorageError,
        UnknownTargetError,
        UsageError,
    )
    from .preview import CursorPlan, PlannedRequest, SincePlan, TargetPlan, preview_plan
    from .read import Table, changes, export, export_parquet, list_runs, query
    from .run_report import report
    from .spec import load_spec
    from .spec.model import Spec
    from .trial import PageTrial, try_page, try_page_async


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'crawlrunner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
