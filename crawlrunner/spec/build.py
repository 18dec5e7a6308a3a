"""Validated spec data → a Spec, with the checks a JSON Schema cannot express.

Unique target names, parents that exist and form no cycle, selectors,
regexes and templates that compile, template variables that are defined,
relative URLs that have a base, environment variables that are set: each
problem is reported with its location, all of them at once.

Precedence, lowest first: built-in defaults < ``http`` < ``defaults`` <
the target < command-line flags. For mappings (headers, params, timeout)
keys are merged one by one, and ``null`` removes an inherited key.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..coercion import CoercionError, coerce
from ..errors import SpecError, SpecProblem
from ..secrets import URL_SYNTAX, MissingEnvironmentVariable, Redactor, interpolate
from ..selectors import LANGUAGES, Language, Selector, SelectorSyntaxError, compile_selector
from ..settings import (
    GATEWAY_TIMEOUT,
    TLS,
    Auth,
    FetchSettings,
    Gateway,
    HttpSettings,
    Limits,
    RateLimit,
    RetryPolicy,
)
from ..templates import Template, compile_tree, escape, tree_names
from .loader import Document, SpecPath
from .model import (
    Expectations,
    Extraction,
    Field,
    Follow,
    Format,
    IntRange,
    Paginate,
    RequestTemplate,
    SeedFile,
    SeedFormat,
    Spec,
    Target,
)

_DEFAULT_LINKS = "a::attr(href)"

# Settings whose values are credentials whether or not they come from ${env.X}.
_SECRET_KEYS = {"auth": ("username", "password", "token", "value"), "gateway": ("api_key",), "proxy": ()}
_FETCH_KEYS = (
    "retry", "rate_limit", "auth", "tls", "proxy", "gateway", "max_body_bytes", "max_redirects", "download",
    "max_download_bytes",
)  # fmt: skip

# (template variables used, where) for each template of a target.
_Uses = list[tuple[set[str], SpecPath]]
_SOURCE_KEYS = ("jmespath", "css", "xpath", "header", "regex", "const", "meta", "parent")


def build_spec(document: Document, environ: Mapping[str, str] | None = None, *, base_url: str | None = None) -> Spec:
    """Build a Spec from a schema-valid document; raise SpecError on any problem.

    ``base_url`` (from the command line) replaces the spec's ``http.base_url``.
    """
    return _Builder(document, environ, base_url).build()


def _merge(inherited: dict[str, Any], own: dict[str, Any], *, ignore_case: bool = False) -> dict[str, Any]:
    """``own`` over ``inherited`` key by key, ``null`` deleting a key.

    Header names ignore case, so ``accept`` replaces an inherited ``Accept``.
    """
    merged = dict(inherited)
    for key, value in own.items():
        for existing in [k for k in merged if (k.lower() == key.lower() if ignore_case else k == key)]:
            del merged[existing]
        if value is not None:
            merged[key] = value
    return merged


class _Builder:
    def __init__(self, document: Document, environ: Mapping[str, str] | None, base_url: str | None) -> None:
        self.document = document
        self.environ = environ
        self.base_url_override = base_url
        self.problems: list[SpecProblem] = []
        self.secrets: list[str] = []
        self.unresolved: set[SpecPath] = set()  # values whose ${env.X} is unset
        self.spec_dir = Path(document.file).parent if document.file != "<spec>" else Path.cwd()

    def problem(self, path: SpecPath, message: str, *, key: bool = False) -> None:
        self.problems.append(self.document.problem(path, message, key=key))

    # ${env.X} is resolved value by value so an unset variable is reported
    # where it is used; every substituted value is remembered for redaction.
    # In templates, a value from the environment is literal text: its braces
    # are escaped so a token like "ab{c}" is sent as written.
    def resolve(self, value: Any, path: SpecPath, *, template: bool = False, url: bool = False) -> Any:
        if isinstance(value, str):
            if "${" not in value:
                return value

            leading = [url and value.startswith("${env.")]

            def literal(found: str) -> str:
                # Inside a URL a value is data: every reserved character is
                # percent-encoded, so "#", "&" or "+" cannot change the request.
                # A URL that starts with the reference (a base from the
                # environment) keeps that value's URL syntax.
                if url:
                    text = quote(found, safe=URL_SYNTAX) if leading[0] else quote(found, safe="")
                    leading[0] = False
                else:
                    text = found
                return escape(text) if template else text

            try:
                text, found = interpolate(value, self.environ, escape=literal)
            except MissingEnvironmentVariable as exc:
                names = ", ".join(exc.names)
                plural = "s" if len(exc.names) > 1 else ""
                verb = "are" if plural else "is"
                self.problem(
                    path,
                    f"environment variable{plural} {names} {verb} not set "
                    f"(set {'them' if plural else 'it'}, or give a default: ${{env.{exc.name}:-value}})",
                )
                self.unresolved.add(path)
                return value
            self.secrets.extend(found)
            return text
        if isinstance(value, dict):
            return {k: self.resolve(v, path + (k,), template=template) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, path + (i,), template=template) for i, v in enumerate(value)]
        return value

    def build(self) -> Spec:
        data = self.document.data
        http = self.http(data.get("http") or {})
        self.http_fetch = self.fetch_layer(data.get("http") or {}, ("http",))
        self.defaults_fetch = self.fetch_layer(data.get("defaults") or {}, ("defaults",))
        self.http_timeout_total = "total" in ((data.get("http") or {}).get("timeout") or {})
        defaults = dict(data.get("defaults") or {})
        for key in ("headers", "params"):
            if key in defaults:
                defaults[key] = self.resolve(defaults[key], ("defaults", key), template=True)
        raw_targets: list[tuple[int, dict[str, Any]]] = []
        seen: dict[str, tuple[int, str]] = {}
        for index, raw in enumerate(data["targets"]):
            name = raw["name"]
            if name.lower() in seen:
                first, spelled = seen[name.lower()]
                note = f", {spelled!r}: table names ignore case" if spelled != name else ""
                self.problem(
                    ("targets", index, "name"), f"duplicate target name {name!r} (also targets[{first}]{note})"
                )
                continue
            seen[name.lower()] = (index, name)
            raw_targets.append((index, raw))
        fields_of = {raw["name"]: set((raw.get("extract") or {}).get("fields", {})) for _, raw in raw_targets}
        self.check_parents(raw_targets)
        targets = [self.target(raw, index, http, defaults, fields_of) for index, raw in raw_targets]
        parents = {t.parent for t in targets}
        for (index, _), target in zip(raw_targets, targets, strict=False):
            if target.conditional and target.name in parents:
                self.problem(("targets", index, "conditional"),
                             "conditional requests cannot be used by a parent target: a 304 has no records for its children")  # fmt: skip
        if http.block_private_addresses and (http.trust_env or any(t.fetch.proxy for t in targets)):
            self.problem(("http", "block_private_addresses"),
                         "cannot be checked through a proxy (proxy or trust_env): the proxy resolves the hosts")  # fmt: skip
        if http.cookies and http.base_url is None:
            self.problem(("http", "cookies"), "cookies need http.base_url: they are sent to its host only")
        output = self.resolve(data["output"], ("output",)) if "output" in data else None
        redact = Redactor(self.secrets)
        if self.problems:
            # A message may quote a value that came from the environment.
            unique = {(p.line, p.column, p.path, redact(p.message)): p for p in self.problems}
            problems = [replace(p, message=message) for (_, _, _, message), p in unique.items()]
            raise SpecError(sorted(problems, key=lambda p: (p.line, p.column)))
        # The digest covers seed files too: a resume must plan the same requests.
        digest = hashlib.sha256(self.document.text.encode("utf-8"))
        for target in targets:
            if target.seeds is not None:
                digest.update(target.seeds.path.read_bytes())
        return Spec(
            name=data["name"],
            source=self.document.file,
            digest=digest.hexdigest(),
            targets=tuple(targets),
            http=http,
            output=output,
            redactor=redact,
        )

    def check_parents(self, raw_targets: list[tuple[int, dict[str, Any]]]) -> None:
        parents = {raw["name"]: raw.get("parent") for _, raw in raw_targets}
        for index, raw in raw_targets:
            parent = raw.get("parent")
            if parent is None:
                continue
            path = ("targets", index, "parent")
            if parent not in parents:
                self.problem(path, f"no target named {parent!r} (targets: {', '.join(parents)})")
                continue
            chain, current = [raw["name"]], parent
            while current is not None and current not in chain:
                chain.append(current)
                current = parents.get(current)
            if current is not None:
                self.problem(path, f"parent targets form a cycle: {' → '.join(chain + [current])}")

    def http(self, raw: dict[str, Any]) -> HttpSettings:
        path: SpecPath = ("http",)
        base_url = self.base_url_override or self.resolve(raw.get("base_url"), path + ("base_url",))
        resolved = path + ("base_url",) not in self.unresolved
        if base_url is not None and resolved and not re.match(r"https?://[^/]", base_url):
            self.problem(path + ("base_url",), "expected an absolute http:// or https:// URL")
        limits = raw.get("limits") or {}
        defaults = HttpSettings()
        return HttpSettings(
            base_url=base_url,
            # Header values are templates (targets render them per request).
            headers=self.resolve(raw.get("headers") or {}, path + ("headers",), template=True),
            user_agent=self.resolve(raw.get("user_agent", defaults.user_agent), path + ("user_agent",)),
            timeout=defaults.timeout.merged(raw.get("timeout")),
            limits=Limits(
                connections=limits.get("connections", defaults.limits.connections),
                per_host=limits.get("per_host", defaults.limits.per_host),
                keepalive=limits.get("keepalive", defaults.limits.keepalive),
                dns_cache=limits.get("dns_cache", defaults.limits.dns_cache),
            ),
            cookies=self.resolve(raw.get("cookies") or {}, path + ("cookies",)),
            trust_env=raw.get("trust_env", False),
            block_private_addresses=raw.get("block_private_addresses", False),
            download_dir=raw.get("download_dir", defaults.download_dir),
        )

    def secret(self, value: Any, path: SpecPath, keys: tuple[str, ...] = ()) -> Any:
        """Resolve ``value`` and treat it as secret, from the environment or not.

        For a mapping, only the values under ``keys`` are secret (a password,
        not the word "basic").
        """
        resolved = self.resolve(value, path)
        if isinstance(resolved, str):
            self.secrets.append(resolved)
        elif isinstance(resolved, dict):
            self.secrets.extend(v for k, v in resolved.items() if k in keys and isinstance(v, str))
        return resolved

    def fetch_layer(self, raw: Mapping[str, Any], path: SpecPath) -> dict[str, Any]:
        """The fetch settings written at one level, resolved where they are written."""
        layer: dict[str, Any] = {}
        for key in _FETCH_KEYS:
            if key not in raw:
                continue
            value = raw[key]
            layer[key] = self.secret(value, path + (key,), _SECRET_KEYS.get(key, ())) if key in _SECRET_KEYS else value
            if key == "tls" and isinstance(value, dict):
                # Files are checked (and made absolute) where they are written.
                layer[key] = {
                    k: self.spec_file(v, path + (key, k)) if k in ("ca_bundle", "client_cert", "client_key") else v
                    for k, v in value.items()
                }
        return layer

    def fetch_settings(self, layers: list[dict[str, Any]], path: SpecPath) -> FetchSettings:
        """http → defaults → target: mappings merge key by key, null switches off."""
        merged: dict[str, Any] = {}
        for layer in layers:
            for key, value in layer.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = _merge(merged[key], value)
                else:
                    merged[key] = value
        base = FetchSettings()
        retry = merged.get("retry", {})
        rate = merged.get("rate_limit") or {}
        if "per_second" in rate and "per_minute" in rate:
            self.problem(path + ("rate_limit",), "give per_second or per_minute, not both")
        per_second = rate.get("per_second") or (rate["per_minute"] / 60 if rate.get("per_minute") else None)
        tls = merged.get("tls") or {}
        return FetchSettings(
            retry=RetryPolicy(attempts=1)
            if retry is None
            else RetryPolicy(
                attempts=retry.get("attempts", base.retry.attempts),
                backoff=retry.get("backoff", base.retry.backoff),
                max_backoff=retry.get("max_backoff", base.retry.max_backoff),
                max_retry_after=retry.get("max_retry_after", base.retry.max_retry_after),
                statuses=frozenset(retry.get("statuses", base.retry.statuses)),
            ),
            rate_limit=RateLimit(
                per_second=per_second,
                min_delay=rate.get("min_delay", base.rate_limit.min_delay),
                cooldown=rate.get("cooldown", base.rate_limit.cooldown),
            ),
            auth=self.auth(merged.get("auth"), path),
            tls=TLS(
                verify=tls.get("verify", True),
                ca_bundle=tls.get("ca_bundle"),
                client_cert=tls.get("client_cert"),
                client_key=tls.get("client_key"),
                fingerprint=tls["fingerprint"].replace(":", "").lower() if tls.get("fingerprint") else None,
            ),
            proxy=merged.get("proxy"),
            gateway=self.gateway(merged.get("gateway")),
            max_body_bytes=merged.get("max_body_bytes", base.max_body_bytes),
            max_redirects=merged.get("max_redirects", base.max_redirects),
            download=merged.get("download", False),
            max_download_bytes=merged.get("max_download_bytes"),
        )

    def spec_file(self, name: str | None, path: SpecPath) -> str | None:
        if name is None:
            return None
        file = (self.spec_dir / name).resolve()
        if not file.is_file():
            self.problem(path, f"file {name!r} not found (looked in {file.parent})")
        return str(file)

    def auth(self, raw: dict[str, Any] | None, path: SpecPath) -> Auth | None:
        if not raw:
            return None
        needs = {"basic": ("username", "password"), "digest": ("username", "password"), "bearer": ("token",),
                 "api_key": ("name", "value")}[raw["type"]]  # fmt: skip
        missing = [k for k in needs if k not in raw]
        if missing:
            self.problem(path + ("auth",), f"{raw['type']} auth needs {' and '.join(map(repr, missing))}")
        return Auth(
            type=raw["type"],
            username=raw.get("username"),
            password=raw.get("password"),
            token=raw.get("token"),
            name=raw.get("name"),
            value=raw.get("value"),
            location=raw.get("in", "header"),
        )

    @staticmethod
    def gateway(raw: dict[str, Any] | None) -> Gateway | None:
        if not raw:
            return None
        options: dict[str, str] = {
            k: _scalar_text(raw[k]) for k in ("render", "country_code", "device_type", "premium") if k in raw
        }
        options.update({k: _scalar_text(v) for k, v in (raw.get("options") or {}).items()})
        return Gateway(
            endpoint=raw["endpoint"],
            api_key=raw["api_key"],
            key_param=raw.get("key_param", "api_key"),
            url_param=raw.get("url_param", "url"),
            options=options,
        )

    def templates(self, raw: Mapping[str, Any], path: SpecPath, uses: _Uses) -> dict[str, Template]:
        compiled: dict[str, Template] = {}
        for name, value in raw.items():
            text = value if isinstance(value, str) else _scalar_text(value)
            if "\r" in text or "\n" in text:
                self.problem(path + (name,), "values must not contain line breaks")
                continue
            compiled[name] = Template.compile(text)
            uses.append((set(compiled[name].names), path + (name,)))
        return compiled

    def target(
        self,
        own: dict[str, Any],
        index: int,
        http: HttpSettings,
        defaults: dict[str, Any],
        fields_of: Mapping[str, set[str]],
    ) -> Target:
        path: SpecPath = ("targets", index)
        raw = {**defaults, **own}
        uses: _Uses = []  # (template variables, where) for every template

        def layered(key: str, base: dict[str, Any]) -> dict[str, Any]:
            # http → defaults → target, each layer's nulls removing what came
            # before; the inherited layers were resolved where they are written.
            ignore_case = key == "headers"
            inherited = _merge(base, defaults.get(key) or {}, ignore_case=ignore_case)
            mine = self.resolve(own.get(key) or {}, path + (key,), template=True)
            return _merge(inherited, mine, ignore_case=ignore_case)

        extract = self.extraction(raw["extract"], path + ("extract",), own.get("parent")) if "extract" in raw else None
        fmt: Format = extract.format if extract else "json"
        json_body = compile_tree(self.resolve(raw.get("json"), path + ("json",), template=True))
        uses.append((tree_names(json_body), path + ("json",)))
        body = None
        if "body" in raw:
            body = Template.compile(self.resolve(raw["body"], path + ("body",), template=True))
            uses.append((set(body.names), path + ("body",)))
        form = None
        if "form" in raw:
            form = self.templates(self.resolve(raw["form"], path + ("form",), template=True), path + ("form",), uses)

        request = RequestTemplate(
            urls=self.urls(raw, path, http.base_url if own.get("parent") is None else "", uses),
            method=raw.get("method", "GET"),
            headers=self.templates(
                layered("headers", {"User-Agent": http.user_agent, **http.headers}), path + ("headers",), uses
            ),
            params=self.templates(layered("params", {}), path + ("params",), uses),
            json_body=json_body,
            has_json_body="json" in raw,
            form=form,
            body=body,
            base_url=http.base_url,
        )
        present = [k for k in ("json", "form", "body") if k in raw]
        if len(present) > 1:
            self.problem(path + (present[1],), f"give one request body: {' or '.join(present)}, not both")

        fetch = self.fetch_settings([self.http_fetch, self.defaults_fetch, self.fetch_layer(own, path)], path)
        timeout = http.timeout.merged(defaults.get("timeout")).merged(own.get("timeout"))
        total_set = self.http_timeout_total or any("total" in (layer.get("timeout") or {}) for layer in (defaults, own))
        if fetch.gateway is not None and not total_set:
            # Rendering gateways take their time; their own docs suggest ~70 s.
            timeout = timeout.merged({"total": GATEWAY_TIMEOUT})
        target = Target(
            name=raw["name"],
            request=request,
            vars=self.vars(raw.get("vars") or {}, path + ("vars",)),
            seeds=self.seeds(raw["seeds"], path + ("seeds",)) if "seeds" in raw else None,
            parent=raw.get("parent"),
            url_field=raw.get("url_field"),
            timeout=timeout,
            fetch=fetch,
            paginate=self.paginate(raw["paginate"], path + ("paginate",), fmt) if raw.get("paginate") else None,
            follow=self.follow(raw["follow"], path + ("follow",), fmt, extract) if "follow" in raw else None,
            extract=extract,
            expect=self.expectations(raw["expect"], path + ("expect",), extract) if "expect" in raw else None,
            mode=raw.get("mode", "append"),
            key=tuple(raw.get("key", ())),
            conditional=raw.get("conditional", False),
            store_bodies=raw.get("store_bodies", False),
        )
        self.check_sources(target, own, path, fields_of, uses)
        self.check_storage(target, path)
        return target

    def urls(self, raw: dict[str, Any], path: SpecPath, base_url: str | None, uses: _Uses) -> tuple[Template, ...]:
        """The target's URL templates; ``base_url`` is "" where relative URLs need none."""
        if "url" in raw:
            pairs = [(raw["url"], path + ("url",))]
        elif "urls" in raw:
            pairs = [(u, path + ("urls", i)) for i, u in enumerate(raw["urls"])]
        else:
            pairs = [("{url}", path)] if "seeds" in raw or "url_field" in raw else []
        compiled = []
        for written, url_path in pairs:
            text = self.resolve(written, url_path, template=True, url=True)
            if url_path in self.unresolved:
                continue
            if any(c in text for c in "\r\n\t"):
                self.problem(url_path, "URLs must not contain line breaks or tabs")
                continue
            scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", text)
            if scheme and scheme.group(1).lower() not in ("http", "https"):
                self.problem(url_path, f"only http and https URLs can be fetched, not {scheme.group(1)}:")
                continue
            template = Template.compile(text)
            if any("{" in part or "}" in part for part in template.parts[::2]):
                # Braces are not valid in URLs: a lone one is a broken placeholder.
                self.problem(
                    url_path, f"stray brace in {written!r}: placeholders are {{name}}; write {{{{ or }}}} for a brace"
                )
                continue
            if base_url is None and not scheme and not template.is_single_placeholder:
                self.problem(url_path, f"relative URL {written!r} needs http.base_url")
            uses.append((set(template.names), url_path))
            compiled.append(template)
        return tuple(compiled)

    def check_sources(
        self, target: Target, own: dict[str, Any], path: SpecPath, fields_of: Mapping[str, set[str]], uses: _Uses
    ) -> None:
        """Where the target's requests come from, and whether its templates can be filled."""
        given = [k for k in ("url", "urls", "seeds", "parent") if k in own]
        if target.parent is None:
            if not {"url", "urls", "seeds"} & set(given):
                self.problem(path, "missing 'url', 'urls', 'seeds' or 'parent': say where requests come from")
            elif "url" in own and "urls" in own:
                self.problem(path + ("urls",), "give either 'url' or 'urls', not both")
            if "url_field" in own:
                self.problem(path + ("url_field",), "url_field needs a parent target")
            available = {name for name, _ in target.vars} | set(target.seeds.columns if target.seeds else ())
            origin = "vars or seeds"
        else:
            for key in ("urls", "seeds", "vars"):
                if key in own:
                    self.problem(path + (key,), f"a child target gets its requests from its parent; remove {key!r}")
            if ("url" in own) == ("url_field" in own):
                self.problem(path, "a child target needs exactly one of 'url' (a template) or 'url_field'")
            parent_fields = set(fields_of.get(target.parent, ()))
            available = parent_fields | {"url"} if "url_field" in own else parent_fields
            if target.url_field and target.url_field not in parent_fields:
                self.problem(
                    path + ("url_field",), f"the parent target {target.parent!r} has no field {target.url_field!r}"
                )
            origin = f"fields of {target.parent!r}"
        if "seeds" in own and target.seeds is None:
            return  # the seed file could not be read: its columns are unknown
        known = ", ".join(sorted(available)) or "none"
        for names, where in uses:
            for name in sorted(names - available):
                self.problem(where, f"template variable {{{name}}} is not defined (known: {known}; from {origin})")

    def check_storage(self, target: Target, path: SpecPath) -> None:
        fields = {f.name for f in target.extract.fields} if target.extract else set()
        if target.mode == "upsert" and not target.key:
            self.problem(path + ("mode",), "upsert needs 'key': the fields that identify a record")
        if target.key and target.mode != "upsert":
            self.problem(path + ("key",), "'key' only applies to mode: upsert")
        for i, name in enumerate(target.key):
            if name not in fields:
                self.problem(path + ("key", i), f"no field named {name!r} in this target")
        if target.mode != "append" and target.extract is None:
            self.problem(path + ("mode",), f"mode {target.mode} needs extract: there is no table without fields")
        if target.conditional and (target.paginate or target.follow):
            # A 304 has no body to find the next page or the links in.
            what = "paginate" if target.paginate else "follow"
            self.problem(
                path + ("conditional",),
                f"conditional requests cannot be combined with {what}: a 304 has no body to continue from",
            )

    def vars(self, raw: dict[str, Any], path: SpecPath) -> tuple[tuple[str, tuple[Any, ...] | IntRange], ...]:
        result: list[tuple[str, tuple[Any, ...] | IntRange]] = []
        for name, source in raw.items():
            if isinstance(source, list):
                result.append((name, tuple(source)))
                continue
            span = IntRange(source["from"], source["to"], source.get("step", 1))
            if span.stop < span.start:
                self.problem(path + (name, "to"), f"'to' ({span.stop}) is below 'from' ({span.start})")
            result.append((name, span))
        return tuple(result)

    def seeds(self, raw: str | dict[str, Any], path: SpecPath) -> SeedFile | None:
        file = raw if isinstance(raw, str) else raw["file"]
        where = path if isinstance(raw, str) else path + ("file",)
        seed_path = (self.spec_dir / file).resolve()
        fmt: SeedFormat = (raw.get("format") if isinstance(raw, dict) else None) or {  # type: ignore[assignment]
            ".csv": "csv",
            ".jsonl": "jsonl",
            ".ndjson": "jsonl",
        }.get(seed_path.suffix.lower(), "text")
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
            self.problem(where, f"seed file {file!r} not found (looked in {seed_path.parent})")
            return None
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            self.problem(where, f"cannot read seed file {file!r}: {exc}")
            return None
        bad = [c for c in columns if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c)]
        if bad:
            self.problem(where, f"seed column names must be identifiers: {', '.join(map(repr, bad))}")
        return SeedFile(seed_path, fmt, columns)

    def extraction(self, raw: dict[str, Any], path: SpecPath, parent: str | None) -> Extraction:
        fmt: Format = raw.get("format", "json")
        records = self.selector(raw["records"], fmt, path + ("records",)) if "records" in raw else None
        fields: list[Field] = []
        columns: dict[str, str] = {}
        for name, spec in raw["fields"].items():
            if name.lower() in columns:
                self.problem(
                    path + ("fields", name),
                    f"duplicate column {name!r} (also {columns[name.lower()]!r}: column names ignore case)",
                    key=True,
                )
                continue
            columns[name.lower()] = name
            built = self.field(name, spec, fmt, path + ("fields", name), parent)
            if built is not None:
                fields.append(built)
        validator = self.record_validator(raw["schema"], path + ("schema",)) if "schema" in raw else None
        return Extraction(format=fmt, fields=tuple(fields), records=records, record_validator=validator)

    def record_validator(self, raw: str | dict[str, Any], path: SpecPath) -> Any:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        if isinstance(raw, str):
            try:
                schema = json.loads((self.spec_dir / raw).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                self.problem(path, f"cannot read the record schema {raw!r}: {exc}")
                return None
        else:
            schema = raw
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            self.problem(path, f"not a valid JSON Schema: {exc.message}")
            return None
        return Draft202012Validator(schema)

    def field(
        self, name: str, spec: str | dict[str, Any], fmt: Format, path: SpecPath, parent: str | None
    ) -> Field | None:
        if isinstance(spec, str):
            selector = self.selector(spec, fmt, path)
            return Field(name, selector=selector, type="str" if fmt == "html" else None) if selector else None
        sources = [k for k in _SOURCE_KEYS if k in spec and not (k == "regex" and _has_selector(spec))]
        if len(sources) != 1:
            found = " and ".join(sources) if sources else "none"
            self.problem(
                path,
                f"give exactly one source: jmespath, css, xpath, header, regex, const, meta or parent (found {found})",
            )
            return None
        source = sources[0]
        selector = None
        if source in ("jmespath", "css", "xpath", "header"):
            selector = self.selector({source: spec[source]}, fmt, path)
            if selector is None:
                return None
        if source == "parent" and parent is None:
            self.problem(path + ("parent",), "only a child target (one with 'parent') has parent fields")
        regex = self.regex(spec["regex"], path + ("regex",)) if "regex" in spec else None
        group: int | str = spec.get("group", 1 if regex is not None and regex.groups else 0)
        if regex is not None and isinstance(group, int) and group > regex.groups:
            self.problem(path + ("group",), f"the pattern has {regex.groups} group(s), not {group}")
        if regex is not None and isinstance(group, str) and group not in regex.groupindex:
            self.problem(path + ("group",), f"the pattern has no group named {group!r}")
        field_type = spec.get("type", "str" if fmt == "html" and source in ("css", "xpath", "regex") else None)
        if "date_format" in spec and field_type not in ("date", "datetime"):
            self.problem(path + ("date_format",), "date_format needs type: date or datetime")
        if spec.get("many") and "join" in spec:
            self.problem(path + ("join",), "give many or join, not both")
        default = spec.get("default")
        if default is not None and field_type is not None:
            try:
                coerce(default, field_type, spec.get("date_format"))
            except CoercionError as exc:
                self.problem(path + ("default",), f"the default does not fit type {field_type}: {exc}")
        return Field(
            name=name,
            selector=selector,
            regex=regex,
            group=group,
            const=spec.get("const"),
            has_const=source == "const",
            meta=spec.get("meta"),
            parent=spec.get("parent"),
            type=field_type,
            date_format=spec.get("date_format"),
            many=spec.get("many", False),
            join=spec.get("join"),
            default=spec.get("default"),
            required=spec.get("required", False),
        )

    def regex(self, pattern: str, path: SpecPath) -> re.Pattern[str] | None:
        try:
            return re.compile(pattern)
        except re.error as exc:
            self.problem(path, f"invalid regular expression {pattern!r}: {exc}")
            return None

    def selector(self, raw: str | dict[str, Any], fmt: Format, path: SpecPath) -> Selector | None:
        language: Language
        if isinstance(raw, str):
            language = "jmespath" if fmt == "json" else "css"
            source, where = raw, path
        else:
            languages = [lang for lang in LANGUAGES if lang in raw]
            if len(languages) != 1:
                found = " and ".join(languages) if languages else "none"
                self.problem(path, f"give exactly one of {', '.join(LANGUAGES)} (found {found})")
                return None
            language = languages[0]
            source, where = raw[language], path + (language,)
        if fmt == "json" and language in ("css", "xpath"):
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

    def paginate(self, raw: dict[str, Any], path: SpecPath, fmt: Format) -> Paginate | None:
        kind = raw["type"]

        def source(key: str) -> Selector | None:
            return self.selector(raw[key], fmt, path + (key,)) if key in raw else None

        needs = {"next_url": "next", "cursor": "cursor", "offset": "limit"}
        if kind in needs and needs[kind] not in raw:
            self.problem(path, f"{kind} pagination needs {needs[kind]!r}")
            return None
        allowed = {
            "next_url": {"next", "has_more"},
            "link_header": {"has_more"},
            "page_number": {"param", "start", "limit", "limit_param", "has_more", "total", "total_pages"},
            "offset": {"param", "start", "limit", "limit_param", "has_more", "total"},
            "cursor": {"param", "cursor", "send_cursor_as", "has_more"},
        }[kind] | {"type", "stop_on_empty", "max_pages"}
        for key in raw:
            if key not in allowed:
                self.problem(path + (key,), f"{key!r} does not apply to {kind} pagination", key=True)
        default_param = {"page_number": "page", "offset": "offset", "cursor": "cursor"}.get(kind, "page")
        return Paginate(
            type=kind,
            next=source("next"),
            param=raw.get("param", default_param),
            start=raw.get("start", 0 if kind == "offset" else 1),
            limit=raw.get("limit"),
            limit_param=raw.get("limit_param", "limit" if kind == "offset" else None),
            cursor=source("cursor"),
            send_cursor_as=raw.get("send_cursor_as", "param"),
            has_more=source("has_more"),
            total=source("total"),
            total_pages=source("total_pages"),
            stop_on_empty=raw.get("stop_on_empty", True),
            max_pages=raw.get("max_pages", 1000),
        )

    def follow(self, raw: dict[str, Any], path: SpecPath, fmt: Format, extract: Extraction | None) -> Follow | None:
        if extract is not None and fmt == "json" and "links" not in raw:
            self.problem(path, "following links in JSON needs 'links': a JMESPath to the URLs")
            return None
        links = self.selector(raw.get("links", _DEFAULT_LINKS), "html" if extract is None else fmt, path + ("links",))
        if links is None:
            return None
        patterns = {}
        for key in ("allow", "deny"):
            compiled = [self.regex(p, path + (key, i)) for i, p in enumerate(raw.get(key, ()))]
            patterns[key] = tuple(p for p in compiled if p is not None)
        return Follow(
            links=links,
            allow=patterns["allow"],
            deny=patterns["deny"],
            domains=tuple(d.lower().lstrip(".") for d in raw.get("domains", ())),
            max_depth=raw.get("max_depth", 1),
            max_pages=raw.get("max_pages", 1000),
            robots=raw.get("robots", True),
        )

    def expectations(self, raw: dict[str, Any], path: SpecPath, extract: Extraction | None) -> Expectations:
        known = {f.name for f in extract.fields} if extract else set()
        for i, name in enumerate(raw.get("not_null", ())):
            if name not in known:
                self.problem(path + ("not_null", i), f"no field named {name!r} in this target")
        return Expectations(
            min_records=raw.get("min_records"),
            not_null=tuple(raw.get("not_null", ())),
            max_failed_ratio=raw.get("max_failed_ratio"),
        )


def _has_selector(spec: Mapping[str, Any]) -> bool:
    return any(k in spec for k in ("jmespath", "css", "xpath", "header", "meta", "parent"))


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
