"""Checks across keys and targets that a JSON Schema cannot express.

Unique target names, parents that exist and form no cycle, a source for
every target's requests, template variables that something defines (and
``{incremental}`` exactly where a target has ``incremental``), storage
modes that fit their keys, and settings that exclude each other. Also the
one warning a spec can get: a credential written into it in clear (in
headers, auth and gateway keys, and a login request's headers and body).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..incremental import VARIABLE
from ..secrets import ENV_REFERENCE
from ..settings import HttpSettings
from .env import Context
from .hosts import check_destinations
from .loader import SpecPath
from .model import SITEMAP_COLUMNS, Target
from .requests import Uses

Indexed = list[tuple[int, dict[str, Any]]]  # (position in targets, the target as written)


def unique_targets(ctx: Context, targets: Sequence[dict[str, Any]]) -> Indexed:
    """The targets whose names are not taken (case-insensitively, as table names are)."""
    kept: Indexed = []
    seen: dict[str, tuple[int, str]] = {}
    for index, raw in enumerate(targets):
        name = raw["name"]
        if name.lower() in seen:
            first, spelled = seen[name.lower()]
            note = f", {spelled!r}: table names ignore case" if spelled != name else ""
            ctx.problem(("targets", index, "name"), f"duplicate target name {name!r} (also targets[{first}]{note})")
            continue
        seen[name.lower()] = (index, name)
        kept.append((index, raw))
    return kept


def check_parents(ctx: Context, raw_targets: Indexed) -> None:
    parents = {raw["name"]: raw.get("parent") for _, raw in raw_targets}
    for index, raw in raw_targets:
        parent = raw.get("parent")
        if parent is None:
            continue
        path = ("targets", index, "parent")
        if parent not in parents:
            ctx.problem(path, f"no target named {parent!r} (targets: {', '.join(parents)})")
            continue
        chain, current = [raw["name"]], parent
        while current is not None and current not in chain:
            chain.append(current)
            current = parents.get(current)
        if current is not None:
            ctx.problem(path, f"parent targets form a cycle: {' → '.join(chain + [current])}")


def check_run(ctx: Context, raw_targets: Indexed, targets: list[Target], http: HttpSettings) -> None:
    """Settings of one target or of ``http`` that conflict with the rest of the run."""
    if http.block_private_addresses and (http.trust_env or any(t.fetch.proxy for t in targets)):
        ctx.problem(("http", "block_private_addresses"),
                    "cannot be checked through a proxy (proxy or trust_env): the proxy resolves the hosts")  # fmt: skip
    if http.cookies and http.base_url is None:
        ctx.problem(("http", "cookies"), "cookies need http.base_url: they are sent to its host only")
    check_destinations(ctx, raw_targets, targets, http)
    by_name = {t.name: t for t in targets}
    for (index, _), target in zip(raw_targets, targets, strict=False):
        check_changes_only(ctx, target, by_name, ("targets", index))
        if target.sitemap is not None and target.fetch.gateway is not None:
            # A rendering gateway answers with a rendered page, not the XML of a sitemap.
            ctx.problem(("targets", index, "seeds"), "sitemaps cannot be read through a gateway: give the target none")


def check_changes_only(ctx: Context, target: Target, by_name: Mapping[str, Target], path: SpecPath) -> None:
    """What cannot go with a target that asks only for what changed (itself, or through a parent)."""
    asking: Target | None = target
    seen: set[str] = set()
    while asking is not None and not asking.changes_only and asking.name not in seen:
        seen.add(asking.name)
        asking = by_name.get(asking.parent) if asking.parent else None
    if asking is None or not asking.changes_only:
        return
    what = "incremental" if asking.incremental is not None else "sitemap since"
    via = "" if asking is target else f" (its parent {asking.name!r} has {what})"
    if target.mode == "replace":
        ctx.problem(
            path + ("mode",),
            f"mode replace keeps only a run's own rows, and a run with {what} fetches only what changed{via}: "
            "use mode: upsert (or append)",
        )
    if target is asking and target.sitemap is not None and target.incremental is not None:
        ctx.problem(path + ("incremental",), "incremental cannot be used with sitemap seeds: use the sitemap's since")


def check_sources(
    ctx: Context, target: Target, own: dict[str, Any], path: SpecPath, fields_of: Mapping[str, set[str]], uses: Uses
) -> None:
    """Where the target's requests come from, and whether its templates can be filled."""
    if target.parent is None:
        available = _start_sources(ctx, target, own, path)
        origin = "vars or seeds"
    else:
        available = _child_sources(ctx, target, own, path, fields_of)
        origin = f"fields of {target.parent!r}"
    if "seeds" in own and target.seeds is None and target.sitemap is None:
        return  # the seed file could not be read: its columns are unknown
    known = ", ".join(sorted(available)) or "none"
    cursor = {VARIABLE} if "incremental" in own else set()
    for names, where in uses:
        for name in sorted(names - available - cursor):
            if name == VARIABLE:
                ctx.problem(where, "{incremental} needs 'incremental' on this target: the cursor it stands for")
                continue
            ctx.problem(where, f"template variable {{{name}}} is not defined (known: {known}; from {origin})")
    if "incremental" in own:
        _check_cursor_use(ctx, path + ("incremental",), available, uses, origin)


def _check_cursor_use(ctx: Context, path: SpecPath, available: set[str], uses: Uses, origin: str) -> None:
    """An incremental target puts {incremental} in its request, and has no other variable of that name."""
    if VARIABLE in available:
        ctx.problem(path, f"{{incremental}} would be both the cursor and a variable from {origin}: rename that one")
    if not any(VARIABLE in names for names, _ in uses):
        ctx.problem(
            path,
            "no request of this target uses {incremental}: put it where the site takes 'changed since' "
            "(url, params, headers or the body), or the cursor changes nothing",
        )


def _start_sources(ctx: Context, target: Target, own: dict[str, Any], path: SpecPath) -> set[str]:
    """A target with no parent: its URLs, vars and seeds; the variables they define."""
    if not {"url", "urls", "seeds"} & set(own):
        ctx.problem(path, "missing 'url', 'urls', 'seeds' or 'parent': say where requests come from")
    elif "url" in own and "urls" in own:
        ctx.problem(path + ("urls",), "give either 'url' or 'urls', not both")
    if "url_field" in own:
        ctx.problem(path + ("url_field",), "url_field needs a parent target")
    sitemap_columns = SITEMAP_COLUMNS if target.sitemap else ()
    return {name for name, _ in target.vars} | set(target.seeds.columns if target.seeds else sitemap_columns)


def _child_sources(
    ctx: Context, target: Target, own: dict[str, Any], path: SpecPath, fields_of: Mapping[str, set[str]]
) -> set[str]:
    """A child target: one of url or url_field; the parent's fields are its variables."""
    assert target.parent is not None
    for key in ("urls", "seeds", "vars"):
        if key in own:
            ctx.problem(path + (key,), f"a child target gets its requests from its parent; remove {key!r}")
    if ("url" in own) == ("url_field" in own):
        ctx.problem(path, "a child target needs exactly one of 'url' (a template) or 'url_field'")
    parent_fields = set(fields_of.get(target.parent, ()))
    if target.url_field and target.url_field not in parent_fields:
        ctx.problem(path + ("url_field",), f"the parent target {target.parent!r} has no field {target.url_field!r}")
    return parent_fields | {"url"} if "url_field" in own else parent_fields


def check_storage(ctx: Context, target: Target, path: SpecPath) -> None:
    fields = {f.name for f in target.extract.fields} if target.extract else set()
    if target.mode == "upsert" and not target.key:
        ctx.problem(path + ("mode",), "upsert needs 'key': the fields that identify a record")
    if target.key and target.mode != "upsert":
        ctx.problem(path + ("key",), "'key' only applies to mode: upsert")
    for i, name in enumerate(target.key):
        if name not in fields:
            ctx.problem(path + ("key", i), f"no field named {name!r} in this target")
    if target.mode != "append" and target.extract is None:
        ctx.problem(path + ("mode",), f"mode {target.mode} needs extract: there is no table without fields")
    if target.conditional:
        check_conditional(ctx, target, path + ("conditional",))


def check_conditional(ctx: Context, target: Target, path: SpecPath) -> None:
    """Validators (and what a page led to) are kept per URL: each page must be its own URL, fetched with GET."""
    if target.method not in ("GET", "HEAD"):
        ctx.problem(
            path, f"conditional requests need GET (or HEAD), not {target.method}: a POST's answer depends on its body"
        )
    elif target.paginate is not None and target.paginate.location != "query":
        ctx.problem(
            path,
            f"conditional requests cannot be combined with paginate in: {target.paginate.location}: "
            "every page has the same URL, and validators are kept per URL",
        )


# Header names whose values are credentials, and the keys of auth and gateway that hold one.
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization")
_CREDENTIAL_KEYS = {"auth": ("password", "token", "value", "client_secret"), "gateway": ("api_key",)}
# Field names of a login request's json or form body that hold a credential (user_password, apiKey, ...).
_CREDENTIAL_FIELD = re.compile(r"passw(or)?d|^pass$|^pwd$|secret|token|api[-_]?key|credential", re.IGNORECASE)


def literal_credentials(ctx: Context, data: Mapping[str, Any]) -> None:
    """Warn about credentials written in the spec instead of taken from ``${env.X}``.

    They still work, and are masked like any secret, but whoever can read
    the spec (a repository, a ticket) can read them. A ``${env.X:-default}``
    whose variable is unset sends its default, which is written in the spec
    just the same. (A credential that is not a string is already a schema
    error: it is never sent.)
    """
    environ = os.environ if ctx.environ is None else ctx.environ
    layers: list[tuple[SpecPath, Any]] = [(("http",), data.get("http")), (("defaults",), data.get("defaults"))]
    layers += [(("targets", i), raw) for i, raw in enumerate(data.get("targets") or [])]
    for path, raw in layers:
        if not isinstance(raw, dict):
            continue
        # In the order written, so the warnings read top to bottom.
        for block, settings in raw.items():
            if not isinstance(settings, dict):
                continue
            for where, value in _credentials(block, settings):
                if why := _written_in_clear(value, environ):
                    if "${env." not in value:
                        ctx.secrets.append(value)  # masked from now on, like any secret
                    ctx.warn(path + (block, *where), why)


def _credentials(block: str, settings: dict[str, Any]) -> Iterator[tuple[SpecPath, Any]]:
    """The credentials a block holds, each with its path in the block, in the order written."""
    if block == "headers":
        yield from (((name,), value) for name, value in settings.items() if str(name).lower() in _CREDENTIAL_HEADERS)
        return
    keys = [key for key in _CREDENTIAL_KEYS.get(block, ()) if key in settings]
    if block == "auth" and settings.get("type") == "token":
        keys = [key for key in keys if key != "token"]  # where the token is, not the token
    yield from (((key,), settings[key]) for key in keys)
    request = settings.get("request") if block == "auth" else None
    if isinstance(request, dict):  # a login request: what it sends to get the token
        for part, fields in request.items():
            if part == "headers" and isinstance(fields, dict):
                yield from ((("request", part, *where), value) for where, value in _credentials(part, fields))
            elif part in ("json", "form"):
                yield from ((("request", part, *where), value) for where, value in _credential_fields(fields))


def _credential_fields(body: Any) -> Iterator[tuple[SpecPath, Any]]:
    """The values of a json or form body under a credential's name (``password``), nested ones too."""
    if isinstance(body, dict):
        for key, value in body.items():
            if isinstance(value, dict | list):
                yield from (((key, *where), inner) for where, inner in _credential_fields(value))
            elif _CREDENTIAL_FIELD.search(str(key)):
                yield (key,), value
    elif isinstance(body, list):
        for index, item in enumerate(body):
            yield from (((index, *where), inner) for where, inner in _credential_fields(item))


_USE_ENV = "anyone who can read the spec can use it; take it from the environment with ${env.NAME}"


def _written_in_clear(value: Any, environ: Mapping[str, str]) -> str | None:
    """Why ``value`` is a credential anyone reading the spec can read, or None."""
    if not isinstance(value, str) or not value:
        return None
    if "${env." not in value:
        return f"a credential written in the spec: {_USE_ENV}"
    for match in ENV_REFERENCE.finditer(value):
        name, default = match.group(1), match.group(2)
        if default and name not in environ:
            return (
                f"a credential written in the spec: {name} is not set, so its default is sent; "
                f"anyone who can read the spec can use it; set {name} or remove the default"
            )
    return None
