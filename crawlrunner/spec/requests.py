"""What a target's requests are made of: URLs, headers, params, bodies, vars and seed files.

Every template is compiled here, and the variables it uses are collected
(``Uses``) so ``checks.check_sources`` can report one that nothing defines.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from typing import Any

from ..settings import HttpSettings
from ..templates import Template, compile_tree, tree_names
from .env import Context
from .layering import merge, scalar_text, single_line
from .loader import SpecPath
from .model import IntRange, RequestTemplate, SeedFile, SeedFormat
from .sitemaps import seed_file_problems
from .urls import check_authority, sendable

# (template variables used, where) for each template of a target.
Uses = list[tuple[set[str], SpecPath]]

_SEED_FORMATS: dict[str, SeedFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def request(
    ctx: Context, own: dict[str, Any], defaults: dict[str, Any], path: SpecPath, http: HttpSettings, uses: Uses
) -> RequestTemplate:
    """The target's request, ``own`` keys over ``defaults`` over ``http``."""
    raw = {**defaults, **own}

    def layered(key: str, base: dict[str, Any]) -> dict[str, Any]:
        # http → defaults → target, each layer's nulls removing what came
        # before; the inherited layers were resolved where they are written.
        ignore_case = key == "headers"
        inherited = merge(base, defaults.get(key) or {}, ignore_case=ignore_case)
        mine = single_line(ctx, ctx.resolve(own.get(key) or {}, path + (key,), template=True), path + (key,))
        return merge(inherited, mine, ignore_case=ignore_case)

    json_body = compile_tree(ctx.resolve(raw.get("json"), path + ("json",), template=True))
    uses.append((tree_names(json_body), path + ("json",)))
    body = None
    if "body" in raw:
        body = Template.compile(ctx.resolve(raw["body"], path + ("body",), template=True))
        uses.append((set(body.names), path + ("body",)))
    form = None
    if "form" in raw:
        form = templates(ctx, ctx.resolve(raw["form"], path + ("form",), template=True), path + ("form",), uses)
    built = RequestTemplate(
        urls=urls(ctx, raw, path, http.base_url if own.get("parent") is None else "", uses),
        headers=templates(
            ctx, layered("headers", {"User-Agent": http.user_agent, **http.headers}), path + ("headers",), uses
        ),
        params=templates(ctx, layered("params", {}), path + ("params",), uses),
        json_body=json_body,
        has_json_body="json" in raw,
        form=form,
        body=body,
        base_url=http.base_url,
        **({"method": raw["method"]} if "method" in raw else {}),
    )
    present = [k for k in ("json", "form", "body") if k in raw]
    if len(present) > 1:
        ctx.problem(path + (present[1],), f"give one request body: {' or '.join(present)}, not both")
    return built


def templates(ctx: Context, raw: Mapping[str, Any], path: SpecPath, uses: Uses) -> dict[str, Template]:
    compiled: dict[str, Template] = {}
    for name, value in raw.items():
        text = value if isinstance(value, str) else scalar_text(value)
        if "\r" in text or "\n" in text:
            ctx.problem(path + (name,), "values must not contain line breaks")
            continue
        compiled[name] = Template.compile(text)
        uses.append((set(compiled[name].names), path + (name,)))
    return compiled


def urls(ctx: Context, raw: dict[str, Any], path: SpecPath, base_url: str | None, uses: Uses) -> tuple[Template, ...]:
    """The target's URL templates; ``base_url`` is "" where relative URLs need none."""
    if "url" in raw:
        pairs = [(raw["url"], path + ("url",))]
    elif "urls" in raw:
        pairs = [(u, path + ("urls", i)) for i, u in enumerate(raw["urls"])]
    else:
        pairs = [("{url}", path)] if "seeds" in raw or "url_field" in raw else []
    compiled = []
    for written, url_path in pairs:
        template = _url(ctx, written, url_path, base_url)
        if template is not None:
            uses.append((set(template.names), url_path))
            compiled.append(template)
    return tuple(compiled)


def _url(ctx: Context, written: str, path: SpecPath, base_url: str | None) -> Template | None:
    text = ctx.resolve(written, path, template=True, url=True)
    if path in ctx.unresolved:
        return None
    scheme = sendable(ctx, text, path)
    if scheme is False:
        return None
    template = Template.compile(text)
    if any("{" in part or "}" in part for part in template.parts[::2]):
        # Braces are not valid in URLs: a lone one is a broken placeholder.
        ctx.problem(path, f"stray brace in {written!r}: placeholders are {{name}}; write {{{{ or }}}} for a brace")
        return None
    if base_url is None and not scheme and not template.is_single_placeholder:
        ctx.problem(path, f"relative URL {written!r} needs http.base_url")
    if scheme:
        check_authority(ctx, template, path)
    return template


def variables(ctx: Context, raw: dict[str, Any], path: SpecPath) -> tuple[tuple[str, tuple[Any, ...] | IntRange], ...]:
    """``vars``: each a list of values or an inclusive range."""
    result: list[tuple[str, tuple[Any, ...] | IntRange]] = []
    for name, source in raw.items():
        if isinstance(source, list):
            result.append((name, tuple(source)))
            continue
        span = IntRange(source["from"], source["to"], **({"step": source["step"]} if "step" in source else {}))
        if span.stop < span.start:
            ctx.problem(path + (name, "to"), f"'to' ({span.stop}) is below 'from' ({span.start})")
        result.append((name, span))
    return tuple(result)


def seeds(ctx: Context, raw: str | dict[str, Any], path: SpecPath) -> SeedFile | None:
    """A seed file and its columns (read now, so templates can be checked against them)."""
    seed_file_problems(ctx, raw, path)
    file = raw if isinstance(raw, str) else raw["file"]
    where = path if isinstance(raw, str) else path + ("file",)
    seed_path = (ctx.spec_dir / file).resolve()
    fmt: SeedFormat = (raw.get("format") if isinstance(raw, dict) else None) or _SEED_FORMATS.get(
        seed_path.suffix.lower(), "text"
    )
    try:
        with seed_path.open(encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                columns = tuple(next(csv.reader(fh), []))
            elif fmt == "jsonl":
                first = next((line for line in fh if line.strip()), "{}")
                columns = tuple(json.loads(first))
            else:
                columns = ("url",)
    except FileNotFoundError:
        ctx.problem(where, f"seed file {file!r} not found (looked in {seed_path.parent})")
        return None
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        ctx.problem(where, f"cannot read seed file {file!r}: {exc}")
        return None
    bad = [c for c in columns if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c)]
    if bad:
        ctx.problem(where, f"seed column names must be identifiers: {', '.join(map(repr, bad))}")
    return SeedFile(seed_path, fmt, columns)
