"""The spec as frozen dataclasses: what plan, engine, extract and store run on.

Built from validated YAML by ``spec.build``; every selector, regex and
template in here is already compiled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import InsecureTLSError, SpecProblem, UnknownTargetError
from ..incremental import Incremental
from ..secrets import Redactor
from ..selectors import LANGUAGES, KeyPath, Selector
from ..settings import FetchSettings, HttpSettings, Timeouts
from ..templates import Template
from .fingerprints import Fingerprints

FieldType = Literal["str", "int", "float", "number", "bool", "json", "date", "datetime"]
Format = Literal["json", "html"]
SeedFormat = Literal["csv", "jsonl", "text"]
PaginationType = Literal["next_url", "link_header", "page_number", "offset", "cursor"]
PageLocation = Literal["query", "body", "header"]  # where a page number, offset or cursor is sent
Meta = Literal["url", "final_url", "status", "content_type", "fetched_at", "depth"]
Mode = Literal["append", "replace", "upsert"]
KeyPaths = tuple[tuple[str, KeyPath, FieldType | None, str | None, str | None], ...]

# Where a field's value comes from, in the order the spec reference lists
# them: the selector languages, then the rest. ``extract.sources`` registers
# how each is read under the same name.
FIELD_SOURCES: tuple[str, ...] = (*LANGUAGES, "regex", "const", "meta", "parent")


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a target's table and where its value comes from.

    Exactly one source is set: ``selector`` (JMESPath, CSS, XPath or a
    header), ``regex`` alone (searched in the document text), ``const``,
    ``meta`` or ``parent``. A ``regex`` next to a selector refines its value.
    """

    name: str
    selector: Selector | None = None
    regex: re.Pattern[str] | None = None
    group: int | str = 0
    const: Any = None
    has_const: bool = False
    meta: Meta | None = None
    parent: str | None = None
    type: FieldType | None = None
    date_format: str | None = None
    decimal: str | None = None  # for type number: "." or ","; None guesses (see coercion)
    many: bool = False
    join: str | None = None
    default: Any = None
    required: bool = False
    # The value is the selector's first match as it is (no regex, many or
    # join): extraction takes a short path for these, the usual case.
    direct: bool = field(init=False, repr=False, compare=False)
    # The name of the source, one of FIELD_SOURCES: what extraction looks up.
    source: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        direct = (
            self.selector is not None and self.selector.language != "header"
            and self.regex is None and not self.many and self.join is None
        )  # fmt: skip
        object.__setattr__(self, "direct", direct)
        object.__setattr__(self, "source", self._source())

    def _source(self) -> str:
        # A regex next to a selector refines its value: the selector is the source.
        if self.has_const:
            return "const"
        if self.meta is not None:
            return "meta"
        if self.parent is not None:
            return "parent"
        return self.selector.language if self.selector is not None else "regex"


# How a body is parsed when ``extract`` does not say.
DEFAULT_FORMAT: Format = "json"


@dataclass(frozen=True, slots=True)
class Extraction:
    format: Format
    fields: tuple[Field, ...]
    records: Selector | None = None
    record_validator: Any = field(default=None, repr=False)  # a jsonschema validator
    # When every field is a plain JSON key path (``a.b``, perhaps typed, with
    # no default, required or regex): (name, path, type, date_format, decimal)
    # per field, for extraction's shortest path. None otherwise.
    key_paths: KeyPaths | None = field(init=False, repr=False, compare=False)
    # When, further, every one is a single untyped key (``id: id``): (name, key)
    # per field, a lookup each and nothing to convert. None otherwise.
    plain_keys: tuple[tuple[str, str], ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = self.format == "json" and all(
            f.direct and isinstance(f.selector.query, KeyPath) and f.default is None and not f.required  # type: ignore[union-attr]
            for f in self.fields
        )
        key_paths = (
            tuple((f.name, f.selector.query, f.type, f.date_format, f.decimal) for f in self.fields)  # type: ignore[union-attr]
            if plain
            else None
        )
        object.__setattr__(self, "key_paths", key_paths)
        plain_keys = (
            tuple((name, path.keys[0]) for name, path, _, _, _ in key_paths)
            if key_paths is not None
            and all(len(path.keys) == 1 and type_ is None for _, path, type_, _, _ in key_paths)
            else None
        )
        object.__setattr__(self, "plain_keys", plain_keys)


@dataclass(frozen=True, slots=True)
class Paginate:
    """How to find the next page from a page; see ``paginate`` for the machines."""

    type: PaginationType
    next: Selector | None = None
    param: str = "page"
    start: int = 1
    limit: int | None = None
    limit_param: str | None = None
    cursor: Selector | None = None
    location: PageLocation = "query"  # the spec's ``in`` (or the older ``send_cursor_as``)
    has_more: Selector | None = None
    total: Selector | None = None
    total_pages: Selector | None = None
    stop_on_empty: bool = True
    max_pages: int = 1000


# Follow's links when the spec names none: every <a href>.
DEFAULT_LINKS = "a::attr(href)"


@dataclass(frozen=True, slots=True)
class Follow:
    """Link following from every fetched page of a target."""

    links: Selector
    allow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()
    domains: tuple[str, ...] = ()  # empty: the start URLs' hosts
    max_depth: int = 1
    max_pages: int = 1000
    robots: bool = True


@dataclass(frozen=True, slots=True)
class Expectations:
    min_records: int | None = None
    not_null: tuple[str, ...] = ()
    max_failed_ratio: float | None = None
    truncated_chains: int | None = None
    drift: Drift | None = None
    allow_empty: tuple[str, ...] = ()  # fields the extraction-health check does not warn about
    health: bool = True  # False: no built-in extraction-health checks


@dataclass(frozen=True, slots=True)
class Change:
    """A tolerated change, as written: '-20%' (a fall of at most 20), '+10%' (a rise), '20%' (either way)."""

    percent: float
    direction: int  # -1: only a fall fails, +1: only a rise, 0: either

    def exceeded_by(self, change: float) -> bool:
        """Whether ``change`` (in percent, or percentage points) goes past the tolerance."""
        if self.direction < 0:
            return change < -self.percent
        if self.direction > 0:
            return change > self.percent
        return abs(change) > self.percent

    def __str__(self) -> str:
        sign = {-1: "-", 1: "+", 0: "±"}[self.direction]
        return f"{sign}{self.percent:g}%"


@dataclass(frozen=True, slots=True)
class Drift:
    """``expect.drift``: how far a run may move from the last completed one."""

    records: Change | None = None
    empty: Mapping[str, Change] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IntRange:
    start: int
    stop: int  # inclusive, as written in the spec
    step: int = 1

    def __iter__(self) -> Any:
        return iter(range(self.start, self.stop + 1, self.step))

    def __len__(self) -> int:
        return len(range(self.start, self.stop + 1, self.step))


@dataclass(frozen=True, slots=True)
class SeedFile:
    path: Path
    format: SeedFormat
    columns: tuple[str, ...]


# The sitemap protocol's limits (sitemaps.org): 50 MB uncompressed per
# document; a million URLs and three levels of index are crawlrunner's own.
SITEMAP_MAX_URLS = 1_000_000
SITEMAP_MAX_DEPTH = 3
SITEMAP_MAX_BYTES = 50 * 1024 * 1024
# The variables a sitemap entry gives a target's templates.
SITEMAP_COLUMNS = ("url", "lastmod")


@dataclass(frozen=True, slots=True)
class Sitemaps:
    """``seeds: {sitemap: ...}``: the target's URLs come from sitemaps (sitemaps.org).

    ``urls`` are absolute. With ``robots``, the robots.txt of each of
    ``robots_origins`` is read for its ``Sitemap:`` lines. ``since`` keeps
    only entries whose ``lastmod`` is not older (entries without one are
    kept): a fixed time, or "last_run", the start of the spec's last
    completed run.
    """

    urls: tuple[str, ...] = ()
    robots: bool = False
    robots_origins: tuple[str, ...] = ()
    since: datetime | Literal["last_run"] | None = None
    max_urls: int = SITEMAP_MAX_URLS  # per run and target, across every document
    max_depth: int = SITEMAP_MAX_DEPTH  # levels of sitemap index below the first document
    max_bytes: int = SITEMAP_MAX_BYTES  # per document, decompressed


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """What each request of a target is rendered from."""

    urls: tuple[Template, ...]
    method: str = "GET"
    headers: Mapping[str, Template] = field(default_factory=dict, repr=False)
    params: Mapping[str, Template] = field(default_factory=dict, repr=False)
    json_body: Any = field(default=None, repr=False)
    has_json_body: bool = False
    form: Mapping[str, Template] | None = field(default=None, repr=False)
    body: Template | None = field(default=None, repr=False)
    base_url: str | None = None
    # Headers without variables (the usual case), rendered once and shared by
    # every request of the target; None when some header has a variable.
    static_headers: Mapping[str, str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        static = all(t.is_static for t in self.headers.values())
        rendered = {k: t.parts[0] for k, t in self.headers.items()} if static else None
        object.__setattr__(self, "static_headers", rendered)

    @property
    def names(self) -> set[str]:
        """Every template variable the request uses."""
        from ..templates import tree_names

        names: set[str] = set()
        for piece in (self.urls, self.headers, self.params, self.json_body, self.form, self.body):
            names |= tree_names(piece if not isinstance(piece, tuple) else list(piece))
        return names


@dataclass(frozen=True, slots=True)
class Target:
    """A named set of requests and the table their records go to."""

    name: str
    request: RequestTemplate
    vars: tuple[tuple[str, tuple[Any, ...] | IntRange], ...] = ()
    seeds: SeedFile | None = None
    sitemap: Sitemaps | None = None  # seeds: {sitemap: ...}
    parent: str | None = None
    url_field: str | None = None
    timeout: Timeouts = field(default_factory=Timeouts)
    fetch: FetchSettings = field(default_factory=FetchSettings, repr=False)
    paginate: Paginate | None = None
    follow: Follow | None = None
    extract: Extraction | None = None
    expect: Expectations | None = None
    mode: Mode = "append"
    key: tuple[str, ...] = ()
    conditional: bool = False
    store_bodies: bool = False
    incremental: Incremental | None = None  # ask only for what changed since the last completed run

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def changes_only(self) -> bool:
        """Whether the target asks only for what changed (``incremental``, a sitemap's ``since``): never all it has."""
        return self.incremental is not None or (self.sitemap is not None and self.sitemap.since is not None)


@dataclass(frozen=True, slots=True)
class Spec:
    """A loaded, validated crawl spec, ready to plan and run."""

    name: str
    source: str
    digest: str
    targets: tuple[Target, ...]
    http: HttpSettings = field(default_factory=HttpSettings, repr=False)
    output: str | None = field(default=None, repr=False)
    redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)
    # What --resume compares: per target, so that adding one is not a change of the others.
    fingerprints: Fingerprints = field(default_factory=Fingerprints, repr=False, compare=False)
    # Located, but not errors: the spec runs (a credential written in clear, say).
    warnings: tuple[SpecProblem, ...] = field(default=(), repr=False, compare=False)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise UnknownTargetError([name], [t.name for t in self.targets])

    def check_targets(self, names: Iterable[str]) -> None:
        """Raise ``UnknownTargetError`` naming every one of ``names`` the spec lacks."""
        known = [t.name for t in self.targets]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise UnknownTargetError(unknown, known)

    def check_tls(self, names: Iterable[str] | None = None) -> None:
        """Raise ``InsecureTLSError`` if a target (of ``names``; None: all) does not check certificates.

        A pinned fingerprint replaces the CA check, so ``verify: false`` with
        one is not insecure.
        """
        wanted = None if names is None else set(names)
        unverified = [
            t.name
            for t in self.targets
            if (wanted is None or t.name in wanted) and not t.fetch.tls.verify and not t.fetch.tls.fingerprint
        ]
        if unverified:
            raise InsecureTLSError(
                f"tls.verify: false turns certificate checks off for {', '.join(map(repr, unverified))}: "
                "run with --insecure (insecure=True) to allow it"
            )

    def children(self, name: str) -> tuple[Target, ...]:
        """Targets whose requests come from ``name``'s records."""
        return tuple(t for t in self.targets if t.parent == name)

    @property
    def default_output(self) -> str:
        """Where the database goes when neither the spec nor the CLI says."""
        if self.output:
            return self.output
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        return f"{safe or 'crawl'}.db"
