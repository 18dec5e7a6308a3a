"""Link following: which links on a page become requests.

URLs are normalised (fragment dropped, scheme and host lower-cased, default
ports removed, empty path made "/") and de-duplicated across the whole run,
per target, so every page is fetched once however many pages link to it.
Non-HTTP links (mailto:, javascript:, tel:, ...) are skipped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from .extract.page import Page
from .plan import RequestPlan
from .results import Outcome
from .spec.model import Follow, Spec, Target

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str | None:
    """The canonical form of an http(s) URL, or None for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{credentials}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _host_allowed(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


@dataclass
class _TargetScope:
    domains: tuple[str, ...]
    seen: set[str] = field(default_factory=set)


class LinkFollower:
    """Run-wide state of every link-following target: seen URLs and page counts."""

    def __init__(self) -> None:
        self._scopes: dict[str, _TargetScope] = {}

    def _scope(self, target: Target, url: str) -> _TargetScope:
        scope = self._scopes.get(target.name)
        if scope is None:
            assert target.follow is not None
            domains = target.follow.domains or tuple(h for h in [(urlsplit(url).hostname or "").lower()] if h)
            scope = self._scopes[target.name] = _TargetScope(domains)
        return scope

    def remember(self, spec: Spec, target_name: str, url: str) -> None:
        """A URL an earlier part of this run already requested (resume)."""
        try:
            target = spec.target(target_name)
        except KeyError:
            return
        normal = normalize_url(url)
        if target.follow is not None and normal is not None:
            self._scope(target, url).seen.add(normal)

    def admit_start(self, plan: RequestPlan) -> bool:
        """Register a start URL; False if it was already fetched (or queued) this run."""
        if plan.target.follow is None:
            return True
        normal = normalize_url(plan.url)
        if normal is None:
            return True  # not a URL we can follow from: let the fetch record why
        scope = self._scope(plan.target, plan.url)
        if normal in scope.seen:
            return False
        scope.seen.add(normal)
        return True

    def __call__(self, plan: RequestPlan, page: Page, outcome: Outcome) -> list[RequestPlan]:
        """Requests for the links on ``page`` that pass the target's rules."""
        rules = plan.target.follow
        if rules is None or plan.depth >= rules.max_depth:
            return []
        scope = self._scope(plan.target, plan.url)
        found: list[RequestPlan] = []
        for href in page.all(rules.links):
            if not isinstance(href, str) or len(scope.seen) >= rules.max_pages:
                continue
            url = normalize_url(urljoin(page.url, href))
            if url is None or url in scope.seen or not self._allowed(url, rules, scope):
                continue
            scope.seen.add(url)
            found.append(self._request(plan, url))
        return found

    @staticmethod
    def _allowed(url: str, rules: Follow, scope: _TargetScope) -> bool:
        if not _host_allowed(urlsplit(url).hostname or "", scope.domains):
            return False
        if any(p.search(url) for p in rules.deny):
            return False
        return not rules.allow or any(p.search(url) for p in rules.allow)

    @staticmethod
    def _request(plan: RequestPlan, url: str) -> RequestPlan:
        # A followed link is a plain GET with the headers of the page that linked it.
        return RequestPlan(plan.target, url, "GET", plan.headers, depth=plan.depth + 1)
