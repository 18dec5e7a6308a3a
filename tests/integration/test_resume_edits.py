"""`--resume` refuses only a spec change that alters what is fetched or stored.

Comments, layout, key order and `expect:` may change between sessions of a
run; a URL, a field, a selector or a seed file's content may not. On both
backends; and a run stored by the earlier fingerprint rule still resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import crawlrunner
from crawlrunner.api import run_async
from crawlrunner.errors import ResumeError
from crawlrunner.spec import load_spec

Spec = Callable[..., Path]

SPEC = """\
name: edits
http: {base_url: "BASE", retry: null, limits: {connections: 1}}
targets:
  - name: items
    url: /json/item/{id}
    vars: {id: {from: 1, to: 4}}
    extract: {fields: {id: {jmespath: id, type: int}, name: {jmespath: name}}}
    expect: {min_records: 1}
  - name: listed
    url: /json/item/{sku}
    seeds: skus.csv
    extract: {fields: {id: {jmespath: id, type: int}}}
"""
SKUS = "sku\n7\n8\n"

# The same crawl, written differently.
COMMENTED = "# the shop's items\n" + SPEC.replace("targets:\n", "targets:  # two of them\n")
REFORMATTED = SPEC.replace(
    "    vars: {id: {from: 1, to: 4}}\n",
    "    vars:\n      id:\n        from: 1\n        to: 4\n",
).replace('"BASE"', "'BASE'")
REORDERED = SPEC.replace(
    'http: {base_url: "BASE", retry: null, limits: {connections: 1}}\ntargets:\n',
    "targets:\n",
).replace("name: edits\n", 'name: edits\nhttp: {limits: {connections: 1}, retry: null, base_url: "BASE"}\n')
EXPECT_EDITED = SPEC.replace("expect: {min_records: 1}", "expect: {min_records: 10}")

# A different crawl.
URL_CHANGED = SPEC.replace("url: /json/item/{id}", "url: /json/item/{id}?v=2")
FIELD_ADDED = SPEC.replace("name: {jmespath: name}}", "name: {jmespath: name}, active: {jmespath: active}}")
SELECTOR_CHANGED = SPEC.replace("name: {jmespath: name}", "name: {jmespath: active}")


def _write(write_spec: Spec, server: str, text: str, skus: str = SKUS) -> Path:
    path = write_spec(text.replace("BASE", server))
    (path.parent / "skus.csv").write_text(skus, encoding="utf-8")
    return path


def _count(output: str, sql: str) -> object:
    return crawlrunner.query(output, sql).rows[0][0]


def _refused(output: str) -> str:
    if output.startswith("postgresql"):
        return "no unfinished run of 'edits' \\(with this spec\\) to resume"
    return "the spec \\(or a seed file\\) changed since run 1 started"


async def _cut(write_spec: Spec, server: str, output: str) -> int:
    """Run 1 of the spec, stopped after two of its six requests."""
    cut = await run_async(load_spec(_write(write_spec, server, SPEC)), output=output, max_requests=2)
    assert cut.status == "limited"
    return cut.run_id


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(COMMENTED, id="comments added"),
        pytest.param(REFORMATTED, id="reformatted"),
        pytest.param(REORDERED, id="keys reordered"),
        pytest.param(EXPECT_EDITED, id="expect edited"),
    ],
)
async def test_a_resume_goes_on_after_edits_that_change_nothing_fetched_or_stored(
    edited: str, server: str, write_spec: Spec, output: str
) -> None:
    run_id = await _cut(write_spec, server, output)

    resumed = await run_async(load_spec(_write(write_spec, server, edited)), output=output, resume=True)

    assert resumed.status == "completed" and resumed.run_id == run_id
    assert (
        _count(output, "SELECT count(*) - count(DISTINCT url) FROM _crawlrunner_fetch_log") == 0
    )  # nothing fetched twice
    assert _count(output, "SELECT count(*) FROM _crawlrunner_fetch_log") == 6
    assert _count(output, "SELECT count(*) FROM items") == 4
    # The resumed run is checked against the expectations the spec has now.
    assert resumed.unmet == (["items: 4 records, expected at least 10"] if edited is EXPECT_EDITED else [])


@pytest.mark.parametrize(
    ("edited", "skus"),
    [
        pytest.param(URL_CHANGED, SKUS, id="a URL"),
        pytest.param(FIELD_ADDED, SKUS, id="a field added"),
        pytest.param(SELECTOR_CHANGED, SKUS, id="a selector"),
        pytest.param(SPEC, "sku\n7\n9\n", id="a seed file's content"),
    ],
)
async def test_a_resume_is_refused_after_edits_that_change_what_is_fetched_or_stored(
    edited: str, skus: str, server: str, write_spec: Spec, output: str
) -> None:
    await _cut(write_spec, server, output)

    with pytest.raises(ResumeError, match=_refused(output)):
        await run_async(load_spec(_write(write_spec, server, edited, skus)), output=output, resume=True)


async def _store_fingerprints(output: str, run_id: int, stored: str) -> None:
    """Overwrite run ``run_id``'s stored fingerprints, as an earlier release would have written them."""
    if output.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(output)
        try:
            await conn.execute("UPDATE _crawlrunner_runs SET fingerprints = $1 WHERE id = $2", stored, run_id)
        finally:
            await conn.close()
    else:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(output)) as db, db:
            db.execute("UPDATE _crawlrunner_runs SET fingerprints = ? WHERE id = ?", (stored, run_id))


def _stored_version(output: str, run_id: int) -> object:
    stored = crawlrunner.query(output, f"SELECT fingerprints FROM _crawlrunner_runs WHERE id = {run_id}").rows[0][0]
    return json.loads(str(stored)).get("version")


async def test_a_run_stored_with_the_earlier_fingerprints_resumes_under_the_same_spec_and_moves_to_the_new_ones(
    server: str, write_spec: Spec, output: str
) -> None:
    run_id = await _cut(write_spec, server, output)
    earlier = load_spec(_write(write_spec, server, SPEC)).fingerprints.earlier
    assert earlier is not None
    # What the release before this rule stored: no version, expect in the digests.
    await _store_fingerprints(output, run_id, json.dumps({"spec": earlier.spec, "targets": dict(earlier.targets)}))

    with pytest.raises(ResumeError, match=_refused(output)):  # that rule counted expect: as a change
        await run_async(load_spec(_write(write_spec, server, EXPECT_EDITED)), output=output, resume=True)
    resumed = await run_async(load_spec(_write(write_spec, server, COMMENTED)), output=output, resume=True)

    assert resumed.status == "completed" and resumed.run_id == run_id
    assert _count(output, "SELECT count(*) - count(DISTINCT url) FROM _crawlrunner_fetch_log") == 0
    assert _stored_version(output, run_id) == 2
