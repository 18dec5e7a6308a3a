"""Spec → the requests to make, produced lazily, one target after another.

A plan is cheap and immutable; the headers and body mapping are shared with
the target rather than copied, so memory stays flat however many URLs a
target expands to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec.model import Spec, Target


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """One request to make for a target."""

    target: Target = field(repr=False)
    url: str = field(repr=False)
    method: str = "GET"

    @property
    def headers(self) -> Mapping[str, str]:
        return self.target.headers

    @property
    def json_body(self) -> Any:
        return self.target.json_body if self.target.has_json_body else None


def plan_target(target: Target) -> Iterator[RequestPlan]:
    for url in target.urls:
        yield RequestPlan(target, url, target.method)


def plan_requests(spec: Spec, only: Iterable[str] | None = None) -> Iterator[RequestPlan]:
    """Every request of the spec's targets (or of the ``only`` ones), in spec order."""
    wanted = set(only) if only is not None else None
    for target in spec.targets:
        if wanted is None or target.name in wanted:
            yield from plan_target(target)
