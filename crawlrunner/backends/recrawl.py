"""``validators.led_to``: what a conditional page led to, kept for its next 304; the same for every backend.

The sinks write it with the page's ETag / Last-Modified, in the same
transaction, from ``outcome.led_to`` (``extract.recrawl``); a 304 leaves it as
it was. It is JSON, its requests as ``requests`` rows (``rows.request_fields``:
secrets as references, never in clear); followed links as their URLs only,
since a link is a plain GET with its page's headers::

    {"items": 4, "end": "no_next", "next": {row}, "links": [url, ...], "children": [{row}, ...]}

It is read back one page at a time, when a conditional request gets a 304
(``led_to_reader``): held in memory for every page at once, a big site's
would cost hundreds of megabytes (a page lists dozens of links).

What a page leads to depends on the spec, not only on the page: its links
selector, its pagination, its child targets. ``led_to_spec`` is a digest of
the settings that derived it (``leads_key``: the run-wide ones, the target's,
its child targets'); when a run opens, a stored page whose digest is not the
one the spec gives now is not asked for conditionally (``trusted``): it is
fetched whole once, and what it leads to is stored anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import MissingSecret
from ..follow import link_request
from ..plan import RequestPlan
from ..results import ChainStop, LedTo, Outcome
from ..secrets import Redactor, mask_references
from ..spec.model import Spec, Target
from .base import LedToReader
from .rows import request_fields, restore_fields

log = logging.getLogger(__name__)


def leads_key(spec: Spec, target: str, children: Iterable[str]) -> str:
    """The digest of the settings that decide what ``target``'s pages lead to (with ``children`` as child targets)."""
    prints = spec.fingerprints
    parts = [prints.spec, f"{target}:{prints.targets.get(target, '')}"]
    parts += [f"{child}:{prints.targets.get(child, '')}" for child in sorted(children)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def expected_keys(spec: Spec, targets: Iterable[Target]) -> dict[str, str]:
    """The ``led_to_spec`` a run of ``targets`` needs of a stored page to ask for it conditionally.

    Only for conditional targets whose pages lead somewhere (pagination,
    links, child targets among ``targets``): the others have nothing to replay.
    """
    targets = list(targets)
    names = {t.name for t in targets}
    keys = {}
    for target in targets:
        children = [child.name for child in spec.children(target.name) if child.name in names]
        if target.conditional and (target.paginate is not None or target.follow is not None or children):
            keys[target.name] = leads_key(spec, target.name, children)
    return keys


def trusted(target: str, stored_key: str | None, expected: Mapping[str, str]) -> bool:
    """Whether a stored page of ``target`` may be asked for conditionally: a 304 would replay the right leads."""
    return target not in expected or stored_key == expected[target]


def usable_validators(
    rows: Iterable[Sequence[Any]], expected: Mapping[str, str]
) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """The stored validators a run may send, by (target, tokenized URL), from ``validators`` rows
    (target, url, etag, last_modified, led_to_spec).

    The pages ``trusted`` leaves out are fetched whole once: said at INFO,
    once per target, since a run that suddenly costs full price needs a reason.
    """
    usable: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    changed: set[str] = set()
    for target, url, etag, modified, key in rows:
        if trusted(target, key, expected):
            usable[(str(target), str(url))] = (etag, modified)
        else:
            changed.add(str(target))
    for target in sorted(changed):
        log.info("%s: the spec changed since its validators were stored: its pages are fetched whole once", target)
    return usable


class LedToColumns:
    """``led_to`` and ``led_to_spec`` of whole pages, for one run's sink."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._keys: dict[tuple[str, tuple[str, ...]], str] = {}

    def __call__(self, outcome: Outcome) -> tuple[str | None, str | None]:
        """What ``outcome``'s page led to, as stored, and its digest; (None, None) when nothing is known."""
        led = outcome.led_to
        if led is None:
            return None, None
        name = outcome.fetch.target
        key = self._keys.get((name, led.child_targets))
        if key is None:
            key = self._keys[(name, led.child_targets)] = leads_key(self.spec, name, led.child_targets)
        return led_to_text(led, self.spec.redactor), key


def led_to_text(led: LedTo, redactor: Redactor) -> str | None:
    """``led`` as ``validators.led_to`` keeps it; None for a page that led nowhere."""
    data: dict[str, Any] = {}
    if led.next_page is not None:
        data["next"] = request_fields(led.next_page, redactor)
    if led.stop is not None:
        data["end"] = str(led.stop)
    if led.links:
        data["links"] = [redactor.tokenize(link.url) for link in led.links]
    if led.children:
        data["children"] = [request_fields(child, redactor) for child in led.children]
    if not data:
        return None
    data["items"] = led.items
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def restore_led_to(spec: Spec, text: str, source: RequestPlan) -> LedTo:
    """What ``source``'s page led to, from its ``led_to``, against this run's spec.

    A stored request whose target the spec no longer has, or that cannot be
    read back, is dropped (with a debug message); a secret no longer known
    makes it invalid, recorded as failed, as on a resume.
    """
    data = json.loads(text)
    led = LedTo(items=int(data.get("items", 0)), stop=ChainStop(data["end"]) if "end" in data else None)
    if "next" in data:
        led.next_page = _restored(spec, data["next"])
    led.links = [_link(spec, source, url) for url in data.get("links", ())]
    led.children = [plan for fields in data.get("children", ()) if (plan := _restored(spec, fields)) is not None]
    return led


def _restored(spec: Spec, fields: Mapping[str, Any]) -> RequestPlan | None:
    try:
        plan = restore_fields(spec, fields)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        log.debug("a request stored in led_to cannot be read back (%s): dropped", exc)
        return None
    if plan is None:
        log.debug("led_to names a target the spec no longer has (%r): its request is dropped", fields.get("target"))
    return plan


def _link(spec: Spec, source: RequestPlan, url: str) -> RequestPlan:
    try:
        return link_request(source, spec.redactor.detokenize(url))
    except MissingSecret as exc:
        return RequestPlan(source.target, mask_references(url), invalid=str(exc), depth=source.depth + 1)


def led_to_reader(spec: Spec, read: Callable[[str, str], Awaitable[str | None]]) -> LedToReader:
    """``OpenedRun.led_to`` for a backend whose ``read(target, tokenized url)`` returns a page's stored ``led_to``."""

    async def led_to(plan: RequestPlan) -> LedTo | None:
        text = await read(plan.target.name, spec.redactor.tokenize(plan.url))
        if text is None:
            return None
        try:
            return restore_led_to(spec, text, plan)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("%s: what %s led to cannot be read back (%s)", plan.target.name, spec.redactor(plan.url), exc)
            return None

    return led_to
