"""What ``--resume`` compares: a digest of the spec outside its targets, and one per target.

A run resumed under a changed spec would fetch a different crawl, so a
resume is refused when the spec changed since the run began, with one
exception: targets added to it. Their requests are new, and every other
target's are what they were (start requests are numbered within their
target), so the run can simply go on with them. One digest per target is what
makes that decidable.

Digests are of the spec's data as written (``${env.X}`` unresolved, so no
secret is in them; keys in any order; comments and layout aside) and of
each target's seed file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import Target


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """The digests ``--resume`` compares, stored with the run."""

    spec: str = ""  # everything outside ``targets``: name, http, defaults, output
    targets: Mapping[str, str] = field(default_factory=dict)  # per target, in spec order

    def added_since(self, earlier: Fingerprints) -> list[str] | None:
        """The targets added since ``earlier`` (in spec order); None when anything else changed."""
        if earlier.spec != self.spec or any(self.targets.get(n) != d for n, d in earlier.targets.items()):
            return None
        return [name for name in self.targets if name not in earlier.targets]

    def joined_by(self, names: Iterable[str], current: Fingerprints) -> Fingerprints:
        """These fingerprints with ``current``'s of the targets ``names`` (targets that join a run)."""
        return Fingerprints(self.spec, {**self.targets, **{name: current.targets[name] for name in names}})

    def to_json(self) -> str:
        return json.dumps({"spec": self.spec, "targets": dict(self.targets)})

    @classmethod
    def from_json(cls, text: str) -> Fingerprints:
        data = json.loads(text)
        return cls(str(data["spec"]), {str(k): str(v) for k, v in data["targets"].items()})


def fingerprint(data: Mapping[str, Any], targets: Sequence[Target]) -> Fingerprints:
    """The fingerprints of a built spec: ``data`` as loaded, ``targets`` as built from it (unique names)."""
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
    return Fingerprints(shared, digests)


def _canonical(value: Any) -> bytes:
    # YAML data is JSON's types plus dates (default=str); keys are strings (the loader's rule).
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()
