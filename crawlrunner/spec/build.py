"""Validated spec data → a Spec, with the checks a JSON Schema cannot express.

Each problem is reported with its location, all of them at once. The work
is split by job, each module taking the build's ``env.Context``:

    env          ${env.X}, secrets, problems, files next to the spec
    layering     http settings and request settings: defaults < http < defaults < target
    requests     URLs, headers, params, bodies, vars and seed files
    extraction   extract fields, follow, expect (selectors and regexes compiled)
    pagination   each paginate style's keys
    checks       across keys and targets: names, parents, sources, storage

This module puts a target together from them and the targets into a Spec.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import SpecError
from ..overrides import output_problem
from ..secrets import Redactor
from ..settings import GATEWAY_TIMEOUT
from . import checks, extraction, incremental, layering, requests, sitemaps
from .env import Context
from .fingerprints import fingerprint
from .loader import Document, SpecPath
from .model import Format, Spec, Target
from .pagination import paginate

# Target keys passed through as written; the others keep Target's defaults.
_TARGET_OPTIONS = ("parent", "url_field", "mode", "conditional", "store_bodies")


def build_spec(document: Document, environ: Mapping[str, str] | None = None, *, base_url: str | None = None) -> Spec:
    """Build a Spec from a schema-valid document; raise SpecError on any problem.

    ``base_url`` (from the command line) replaces the spec's ``http.base_url``.
    """
    return _Builder(Context(document, environ), base_url).build()


class _Builder:
    """One spec's targets, with the layers every target inherits."""

    def __init__(self, ctx: Context, base_url: str | None) -> None:
        self.ctx = ctx
        data = ctx.document.data
        raw_http = data.get("http") or {}
        self.http = layering.http_settings(ctx, raw_http, base_url)
        base = self.http.base_url  # with the command line's, if given
        self.http_fetch = layering.fetch_layer(ctx, raw_http, ("http",), base_url=base)
        self.defaults_fetch = layering.fetch_layer(ctx, data.get("defaults") or {}, ("defaults",), base_url=base)
        self.http_timeout_total = "total" in (raw_http.get("timeout") or {})
        self.defaults = dict(data.get("defaults") or {})
        for key in ("headers", "params"):
            if key in self.defaults:
                resolved = ctx.resolve(self.defaults[key], ("defaults", key), template=True)
                self.defaults[key] = layering.single_line(ctx, resolved, ("defaults", key))

    def build(self) -> Spec:
        ctx, data = self.ctx, self.ctx.document.data
        raw_targets = checks.unique_targets(ctx, data["targets"])
        fields_of = {raw["name"]: set((raw.get("extract") or {}).get("fields", {})) for _, raw in raw_targets}
        checks.check_parents(ctx, raw_targets)
        targets = [self.target(raw, index, fields_of) for index, raw in raw_targets]
        checks.check_run(ctx, raw_targets, targets, self.http)
        checks.literal_credentials(ctx, data)
        output = ctx.resolve(data["output"], ("output",)) if "output" in data else None
        if output is not None and (problem := output_problem(output)):
            ctx.problem(("output",), problem)
        redact = Redactor(ctx.secrets)
        if ctx.problems:
            # A message may quote a value that came from the environment.
            unique = {(p.line, p.column, p.path, redact(p.message)): p for p in ctx.problems}
            problems = [replace(p, message=message) for (_, _, _, message), p in unique.items()]
            raise SpecError(sorted(problems, key=lambda p: (p.line, p.column)))
        # The digest covers seed files too: a resume must plan the same requests.
        digest = hashlib.sha256(ctx.document.text.encode("utf-8"))
        for target in targets:
            if target.seeds is not None:
                digest.update(target.seeds.path.read_bytes())
        return Spec(
            name=data["name"],
            source=ctx.document.file,
            digest=digest.hexdigest(),
            targets=tuple(targets),
            http=self.http,
            output=output,
            redactor=redact,
            fingerprints=fingerprint(data, targets),
            warnings=tuple(ctx.warnings),
        )

    def target(self, own: dict[str, Any], index: int, fields_of: Mapping[str, set[str]]) -> Target:
        ctx, http, defaults = self.ctx, self.http, self.defaults
        path: SpecPath = ("targets", index)
        raw = {**defaults, **own}
        uses: requests.Uses = []  # (template variables, where) for every template
        extract = (
            extraction.extraction(ctx, raw["extract"], path + ("extract",), own.get("parent"))
            if "extract" in raw
            else None
        )
        fmt: Format = extract.format if extract else "json"
        request = requests.request(ctx, own, defaults, path, http, uses)
        own_fetch = layering.fetch_layer(ctx, own, path, base_url=http.base_url)
        layers = [(("http",), self.http_fetch), (("defaults",), self.defaults_fetch), (path, own_fetch)]
        fetch = layering.fetch_settings(ctx, layers, path)
        timeout = http.timeout.merged(defaults.get("timeout")).merged(own.get("timeout"))
        total_set = self.http_timeout_total or any("total" in (layer.get("timeout") or {}) for layer in (defaults, own))
        if fetch.gateway is not None and not total_set:
            # Rendering gateways take their time; their own docs suggest ~70 s.
            timeout = timeout.merged({"total": GATEWAY_TIMEOUT})
        variables = requests.variables(ctx, raw.get("vars") or {}, path + ("vars",))
        wants_sitemaps = sitemaps.is_sitemap(raw.get("seeds"))
        seeds = requests.seeds(ctx, raw["seeds"], path + ("seeds",)) if "seeds" in raw and not wants_sitemaps else None
        sitemap = sitemaps.sitemaps(ctx, raw["seeds"], path + ("seeds",), http, request) if wants_sitemaps else None
        pages = paginate(ctx, raw["paginate"], path + ("paginate",), fmt, request) if raw.get("paginate") else None
        links = extraction.follow(ctx, raw["follow"], path + ("follow",), fmt, extract) if "follow" in raw else None
        expect = extraction.expectations(ctx, raw["expect"], path + ("expect",), extract) if "expect" in raw else None
        cursor = incremental.settings(ctx, own, path, extract, request) if "incremental" in own else None
        target = Target(
            name=raw["name"],
            request=request,
            vars=variables,
            seeds=seeds,
            sitemap=sitemap,
            timeout=timeout,
            fetch=fetch,
            paginate=pages,
            follow=links,
            extract=extract,
            expect=expect,
            key=tuple(raw.get("key", ())),
            incremental=cursor,
            **layering.given(raw, _TARGET_OPTIONS),
        )
        checks.check_sources(ctx, target, own, path, fields_of, uses)
        checks.check_storage(ctx, target, path)
        return _keys_required(target)


def _keys_required(target: Target) -> Target:
    """An upsert target whose key fields are required: a record without its key cannot be stored (it is dropped)."""
    if target.mode != "upsert" or target.extract is None or not target.key:
        return target
    fields = tuple(replace(f, required=True) if f.name in target.key else f for f in target.extract.fields)
    return replace(target, extract=replace(target.extract, fields=fields))
