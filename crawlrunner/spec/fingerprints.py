"""What ``--resume`` compares: a digest of the spec outside its targets, and one per target.

A run resumed under a changed spec would fetch a different crawl, so a
resume is refused when the spec changed since the run began, with one
exception: targets added to it. Their requests are new, and every other
target's are what they were (start requests are numbered within their
target), so the run can simply go on with them. One digest per target is what
makes that decidable.

Digests are of what decides what a run fetches and stores: the spec's data
as loaded and validated (comments, layout, quoting and key order aside;
``${env.X}`` as the reference written, unresolved, so no secret is in them),
each target's seed file, and the names of its child targets. Left out, since
they change neither: ``expect:`` (a resumed run is checked against the
expectations the spec has now), ``output`` (the run is looked up in the
database it names anyway) and ``$schema`` (a pointer for editors).

Runs stored before this rule (no ``version`` in their JSON) kept ``expect``,
``output`` and ``$schema`` in their digests: they are compared the way they
were made (``Fingerprints.earlier``), and a resume stores the new form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Target


VERSION = 2  # 1: stored without a version, of the data with expect, output and $schema
# What changes neither what is fetched nor what is stored: left out of the digests.
_UNFETCHED_TOP = ("output", "$schema")
_UNFETCHED_TARGET = ("expect",)  # in a target, or in ``defaults``


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """The digests ``--resume`` compares, stored with the run."""

    spec: str = ""  # everything outside ``targets``: name, http, defaults
    targets: Mapping[str, str] = field(default_factory=dict)  # per target, in spec order
    version: int = VERSION
    # The same spec's fingerprints by version 1's rule, to compare with a run stored by it.
    earlier: Fingerprints | None = field(default=None, compare=False, repr=False)

    def added_since(self, stored: Fingerprints) -> list[str] | None:
        """The targets added since ``stored`` (in spec order); None when anything else changed."""
        mine = self if stored.version == self.version else self.earlier
        if mine is None or mine.version != stored.version:
            return None
        if stored.spec != mine.spec or any(mine.targets.get(n) != d for n, d in stored.targets.items()):
            return None
        return [name for name in mine.targets if name not in stored.targets]

    def joined_by(self, names: Iterable[str], current: Fingerprints) -> Fingerprints:
        """What to store for a run with these (stored) fingerprints that the targets ``names`` join.

        For a run that ``current.added_since(self)`` accepts: its targets' digests
        are ``current``'s, in ``current``'s form (a run stored by version 1 moves
        to this one), and targets added but not joining stay out, to join later.
        """
        kept = [*self.targets, *(name for name in names if name not in self.targets)]
        return Fingerprints(current.spec, {name: current.targets[name] for name in kept}, current.version)

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "spec": self.spec, "targets": dict(self.targets)})

    @classmethod
    def from_json(cls, text: str) -> Fingerprints:
        data = json.loads(text)
        targets = {str(k): str(v) for k, v in data["targets"].items()}
        return cls(str(data["spec"]), targets, int(data.get("version", 1)))


def fingerprint(data: Mapping[str, Any], targets: Sequence[Target]) -> Fingerprints:
    """The fingerprints of a built spec: ``data`` as loaded, ``targets`` as built from it (unique names).

    With, as ``earlier``, the same spec's by version 1's rule (for runs stored by it).
    """
    current = _digests(_fetched(data), targets, VERSION)
    return replace(current, earlier=_digests(data, targets, 1))


def _fetched(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without what changes neither what is fetched nor what is stored."""
    fetched = {k: v for k, v in data.items() if k not in _UNFETCHED_TOP}
    if isinstance(data.get("defaults"), Mapping):
        fetched["defaults"] = _without(data["defaults"], _UNFETCHED_TARGET)
    fetched["targets"] = [_without(raw, _UNFETCHED_TARGET) for raw in data["targets"]]
    return fetched


def _without(raw: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k not in keys}


def _digests(data: Mapping[str, Any], targets: Sequence[Target], version: int) -> Fingerprints:
    written = {raw["name"]: raw for raw in data["targets"]}
    digests = {}
    for target in targets:
        # A target's children take their requests from its records: adding one
        # changes what the target's pages lead to, so it is in the digest.
        children = sorted(t.name for t in targets if t.parent == target.name)
        digest = hashlib.sha256(_canonical({"target": written[target.name], "children": children}))
        if target.seeds is not None:
            digest.update(target.seeds.path.read_bytes())
        digests[target.name] = digest.hexdigest()
    shared = hashlib.sha256(_canonical({k: v for k, v in data.items() if k != "targets"})).hexdigest()
    return Fingerprints(shared, digests, version)


def _canonical(value: Any) -> bytes:
    # YAML data is JSON's types plus dates (default=str); keys are strings (the loader's rule).
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()
