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

from .document import Page
from .plan import RequestPlan, plan_target
from .spec.model import Follow, Target

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


def links(plan: RequestPlan, page: Page) -> list[RequestPlan]:
    """Requests for the links on ``page`` that pass the target's allow/deny rules and depth.

    Whether a link was seen before, is off the target's domains or beyond
    its ``max_pages`` is the frontier's to say (``FollowScope.admit``): that
    is run-wide state, and several workers may share it.
    """
    rules = plan.target.follow
    if rules is None or plan.depth >= rules.max_depth:
        return []
    found: dict[str, RequestPlan] = {}
    for href in page.all(rules.links):
        if not isinstance(href, str):
            continue
        url = normalize_url(urljoin(page.url, href))
        if url is None or url in found or not _rules_allow(url, rules):
            continue
        found[url] = link_request(plan, url)
    return list(found.values())


def link_request(source: RequestPlan, url: str) -> RequestPlan:
    """The request for a link (normalised, allowed) on ``source``'s page."""
    # A followed link is a plain GET with the headers of the page that linked it.
    return RequestPlan(source.target, url, "GET", source.headers, depth=source.depth + 1)


def is_link(plan: RequestPlan, source: RequestPlan) -> bool:
    """Whether ``plan``, derived from ``source``, is a followed link (not a next page or a child request).

    ``links`` makes the only derived requests of the page's own target one
    level deeper: a next page keeps its depth, a child request has another
    target. A sitemap document's requests are no links (its depth is its
    level of sitemap index).
    """
    return (
        plan.target.follow is not None and plan.target is source.target and plan.depth > source.depth
        and source.role is None
    )  # fmt: skip


def _rules_allow(url: str, rules: Follow) -> bool:
    if any(p.search(url) for p in rules.deny):
        return False
    return not rules.allow or any(p.search(url) for p in rules.allow)


@dataclass
class FollowScope:
    """One link-following target's run-wide state: the URLs it requested, and the hosts it may visit.

    The hosts are the target's ``domains``, else the hosts of its start URLs
    (``start_hosts``, worked out from the spec when the run opens, so every
    session and every worker of a run agrees on them). A target without start
    URLs of its own (a child target) stays on the host of the page a link is on.
    """

    rules: Follow
    start_hosts: frozenset[str] = frozenset()
    seen: set[str] = field(default_factory=set)
    unfollowed: int = 0  # links ``admit`` refused for ``max_pages`` alone: new and on the target's hosts

    def remember(self, url: str) -> None:
        """A URL an earlier part of this run already requested (resume)."""
        normal = normalize_url(url)
        if normal is not None:
            self.seen.add(normal)

    def admit_start(self, plan: RequestPlan) -> bool:
        """Register a start URL; False if it was already fetched (or queued) this run."""
        normal = normalize_url(plan.url)
        if normal is None:
            return True  # not a URL we can follow from: let the fetch record why
        if normal in self.seen:
            return False
        self.seen.add(normal)
        return True

    def admit(self, link: RequestPlan, source: RequestPlan) -> bool:
        """Whether a followed link (already normalised) found on ``source``'s page is new, on the
        target's hosts and within ``max_pages`` (a link refused for that alone is counted in ``unfollowed``)."""
        if link.url in self.seen or not self.in_scope(link, source):
            return False
        if len(self.seen) >= self.rules.max_pages:
            self.unfollowed += 1
            return False
        self.seen.add(link.url)
        return True

    def in_scope(self, link: RequestPlan, source: RequestPlan) -> bool:
        """Whether a followed link found on ``source``'s page is on the target's hosts.

        Where the seen set is shared by several workers (a database's), this
        is the part of ``admit`` each can decide alone.
        """
        hosts: Iterable[str] = self.rules.domains or self.start_hosts or (_host(source.url),)
        return _host_allowed(_host(link.url), hosts)


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def start_hosts(target: Target) -> frozenset[str]:
    """The hosts of a link-following target's start URLs, from its plan (none for a child target).

    Walks the target's start requests once, keeping only their hosts. None
    for a target seeded by sitemaps either: its start URLs are sitemaps,
    often on another host than the pages they list, so its links stay on
    the host of the page they are on.
    """
    if target.sitemap is not None:
        return frozenset()
    return frozenset(host for plan in plan_target(target) if not plan.invalid and (host := _host(plan.url)))
