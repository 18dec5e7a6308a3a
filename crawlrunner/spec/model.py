"""Validated spec data → frozen dataclasses the rest of crawlrunner runs on.

This is where the checks the JSON Schema cannot express happen (unique
target names, selectors that compile, relative URLs that have a base, set
environment variables), each reported with its location, all at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urljoin, urlsplit

from ..errors import SpecError, SpecProblem
from ..secrets import MissingEnvironmentVariable, Redactor, interpolate
from ..selectors import LANGUAGES, Language, Selector, SelectorSyntaxError, compile_selector
from ..settings import HttpSettings, Limits, Timeouts
from .loader import Document, SpecPath

FieldType = Literal["str", "int", "float", "bool", "json"]
Format = Literal["json", "html"]


@dataclass(frozen=True, slots=True)
class Field:
    """One column of a target's table and where its value comes from."""

    name: str
    selector: Selector
    type: FieldType | None = None
    default: Any = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class Extraction:
    format: Format
    fields: tuple[Field, ...]
    records: Selector | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """A named set of requests and the table their records go to."""

    name: str
    urls: tuple[str, ...] = field(repr=False)
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json_body: Any = field(default=None, repr=False)
    has_json_body: bool = False
    timeout: Timeouts = field(default_factory=Timeouts)
    extract: Extraction | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """A loaded, validated crawl spec, ready to plan and run."""

    name: str
    source: str
    digest: str
    targets: tuple[Target, ...]
    http: HttpSettings = field(default_factory=HttpSettings, repr=False)
    output: str | None = None
    redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    @property
    def default_output(self) -> str:
        """Where the database goes when neither the spec nor the CLI says."""
        if self.output:
            return self.output
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        return f"{safe or 'crawl'}.db"


class _Builder:
    """Turns validated data into a Spec, collecting every problem on the way."""

    def __init__(self, document: Document, environ: Mapping[str, str] | None, base_url: str | None) -> None:
        self.document = document
        self.environ = environ
        self.base_url_override = base_url
        self.problems: list[SpecProblem] = []
        self.secrets: list[str] = []

    def problem(self, path: SpecPath, message: str, *, key: bool = False) -> None:
        self.problems.append(self.document.problem(path, message, key=key))

    # ${env.X} is resolved value by value so an unset variable is reported
    # where it is used; every substituted value is remembered for redaction.
    def resolve(self, value: Any, path: SpecPath) -> Any:
        if isinstance(value, str):
            if "${" not in value:
                return value
            try:
                text, found = interpolate(value, self.environ)
            except MissingEnvironmentVariable as exc:
                self.problem(
                    path,
                    f"environment variable {exc.name} is not set "
                    f"(set it, or give a default: ${{env.{exc.name}:-value}})",
                )
                return value
            self.secrets.extend(found)
            return text
        if isinstance(value, dict):
            return {k: self.resolve(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def build(self) -> Spec:
        data = self.document.data
        http = self.http(data.get("http") or {})
        targets: list[Target] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(data["targets"]):
            name = raw["name"]
            if name in seen:
                self.problem(("targets", index, "name"), f"duplicate target name {name!r} (also targets[{seen[name]}])")
                continue
            seen[name] = index
            targets.append(self.target(raw, index, http))
        output = self.resolve(data["output"], ("output",)) if "output" in data else None
        if self.problems:
            raise SpecError(sorted(self.problems, key=lambda p: (p.line, p.column)))
        return Spec(
            name=data["name"],
            source=self.document.file,
            digest=hashlib.sha256(self.document.text.encode("utf-8")).hexdigest(),
            targets=tuple(targets),
            http=http,
            output=output,
            redactor=Redactor(self.secrets),
        )

    def http(self, raw: dict[str, Any]) -> HttpSettings:
        path: SpecPath = ("http",)
        base_url = self.base_url_override or self.resolve(raw.get("base_url"), path + ("base_url",))
        if base_url is not None and urlsplit(base_url).scheme not in ("http", "https"):
            self.problem(path + ("base_url",), "expected an absolute http:// or https:// URL")
        limits = raw.get("limits") or {}
        defaults = HttpSettings()
        return HttpSettings(
            base_url=base_url,
            headers=self.headers(raw.get("headers") or {}, path + ("headers",)),
            user_agent=self.resolve(raw.get("user_agent", defaults.user_agent), path + ("user_agent",)),
            timeout=defaults.timeout.merged(raw.get("timeout")),
            limits=Limits(
                connections=limits.get("connections", defaults.limits.connections),
                per_host=limits.get("per_host", defaults.limits.per_host),
            ),
            max_body_bytes=raw.get("max_body_bytes", defaults.max_body_bytes),
        )

    def headers(self, raw: dict[str, str], path: SpecPath) -> dict[str, str]:
        resolved: dict[str, str] = self.resolve(raw, path)
        for name, value in resolved.items():
            if "\r" in value or "\n" in value:
                self.problem(path + (name,), "header values must not contain line breaks")
        return resolved

    def target(self, raw: dict[str, Any], index: int, http: HttpSettings) -> Target:
        path: SpecPath = ("targets", index)
        headers = {"User-Agent": http.user_agent, **http.headers}
        headers.update(self.headers(raw.get("headers") or {}, path + ("headers",)))
        params = self.resolve(raw.get("params") or {}, path + ("params",))
        if "url" in raw:
            url_paths: list[SpecPath] = [path + ("url",)]
            written = [raw["url"]]
        else:
            url_paths = [path + ("urls", i) for i in range(len(raw["urls"]))]
            written = raw["urls"]
        urls = tuple(
            self.url(self.resolve(url, url_path), url_path, http.base_url, params)
            for url, url_path in zip(written, url_paths)
        )
        return Target(
            name=raw["name"],
            urls=urls,
            method=raw.get("method", "GET"),
            headers=headers,
            json_body=self.resolve(raw.get("json"), path + ("json",)),
            has_json_body="json" in raw,
            timeout=http.timeout.merged(raw.get("timeout")),
            extract=self.extraction(raw["extract"], path + ("extract",)) if "extract" in raw else None,
        )

    def url(self, url: str, path: SpecPath, base_url: str | None, params: Mapping[str, Any]) -> str:
        if any(c in url for c in "\r\n\t"):
            self.problem(path, "URLs must not contain line breaks or tabs")
        scheme = urlsplit(url).scheme
        if not scheme:
            if base_url is None:
                self.problem(path, f"relative URL {url!r} needs http.base_url")
                return url
            url = urljoin(base_url, url)
        elif scheme not in ("http", "https"):
            self.problem(path, f"only http and https URLs can be fetched, not {scheme}:")
        if params:
            query = urlencode({k: _param_text(v) for k, v in params.items()})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url

    def extraction(self, raw: dict[str, Any], path: SpecPath) -> Extraction:
        fmt: Format = raw.get("format", "json")
        records = self.selector(raw["records"], fmt, path + ("records",)) if "records" in raw else None
        fields: list[Field] = []
        for name, spec in raw["fields"].items():
            field_path = path + ("fields", name)
            selector = self.selector(spec, fmt, field_path)
            if selector is None:
                continue
            options = spec if isinstance(spec, dict) else {}
            fields.append(
                Field(
                    name=name,
                    selector=selector,
                    type=options.get("type", "str" if fmt == "html" else None),
                    default=options.get("default"),
                    required=options.get("required", False),
                )
            )
        return Extraction(format=fmt, fields=tuple(fields), records=records)

    def selector(self, raw: str | dict[str, Any], fmt: Format, path: SpecPath) -> Selector | None:
        language: Language
        if isinstance(raw, str):
            language = "jmespath" if fmt == "json" else "css"
            source = raw
            where = path
        else:
            languages = [lang for lang in LANGUAGES if lang in raw]
            if len(languages) != 1:
                found = " and ".join(languages) if languages else "none"
                self.problem(path, f"give exactly one of jmespath, css or xpath (found {found})")
                return None
            language = languages[0]
            source = raw[language]
            where = path + (language,)
        if fmt == "json" and language != "jmespath":
            self.problem(where, f"a json target selects with jmespath, not {language} (or set extract.format: html)")
            return None
        if fmt == "html" and language == "jmespath":
            self.problem(where, "an html target selects with css or xpath, not jmespath")
            return None
        try:
            return compile_selector(language, source)
        except SelectorSyntaxError as exc:
            self.problem(where, str(exc))
            return None


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_spec(
    document: Document, environ: Mapping[str, str] | None = None, *, base_url: str | None = None
) -> Spec:
    """Build a Spec from a schema-valid document; raise SpecError on any problem.

    ``base_url`` (from the command line) replaces the spec's ``http.base_url``.
    """
    return _Builder(document, environ, base_url).build()

