"""The spec pipeline: YAML text → located data → schema check → Spec."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ..errors import SpecError
from .build import build_spec
from .loader import Document, format_path, load_file, load_text
from .model import Spec
from .validate import check, spec_schema

__all__ = ["Document", "Spec", "format_path", "load_spec", "load_spec_text", "spec_schema"]

log = logging.getLogger(__name__)


def load_spec(path: str | Path, environ: Mapping[str, str] | None = None, *, base_url: str | None = None) -> Spec:
    """Load, validate and build the spec at ``path``.

    Raises SpecError listing every problem, each with file, line and column.
    ``environ`` replaces ``os.environ`` for ``${env.X}`` (useful in tests);
    ``base_url`` replaces the spec's ``http.base_url``.
    """
    return _build(load_file(path), environ, base_url)


def load_spec_text(
    text: str, file: str = "<spec>", environ: Mapping[str, str] | None = None, *, base_url: str | None = None
) -> Spec:
    """Like load_spec, for YAML already in memory."""
    return _build(load_text(text, file), environ, base_url)


def _build(document: Document, environ: Mapping[str, str] | None, base_url: str | None) -> Spec:
    if document.data is None:
        raise SpecError([document.problem((), "the spec is empty")])
    if not isinstance(document.data, dict):
        raise SpecError([document.problem((), "a spec is a mapping with name and targets at the top")])
    problems = check(document)
    if problems:
        raise SpecError(problems)
    spec = build_spec(document, environ, base_url=base_url)
    # Logged, not raised: the spec runs; `validate` and `run` both show them (not with -q).
    for warning in spec.warnings:
        log.warning("%s", warning)
    return spec
