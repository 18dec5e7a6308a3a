"""The spec pipeline: YAML text → located data → schema check → Spec."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .build import build_spec
from .loader import Document, format_path, load_file, load_mapping, load_text
from .model import Spec
from .validate import check, spec_schema

__all__ = ["Document", "Spec", "format_path", "load_spec", "load_spec_text", "spec_schema"]

log = logging.getLogger(__name__)


def load_spec(
    source: str | Path | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    base_url: str | None = None,
) -> Spec:
    """Load, validate and build a spec: a file, YAML text, or the data itself.

    ``source`` is read as

    - a ``Path``: the spec file there;
    - a ``str`` with a line break in it: YAML text (as ``load_spec_text``),
      reported as ``<spec>``; a ``str`` of one line: the name of a spec file.
      File names have no line breaks and a spec of any use has several
      lines, so neither is taken for the other (one line of YAML: add "\\n");
    - a mapping (a dict, say one built in a notebook or read from JSON):
      the spec's data, reported as ``<mapping>``, without line numbers.

    Raises SpecError listing every problem, each with file, line and column.
    ``environ`` replaces ``os.environ`` for ``${env.X}`` (useful in tests);
    ``base_url`` replaces the spec's ``http.base_url``. Relative paths in a
    spec (seed files, CA bundles) are read from the spec file's directory, or
    the current one for text and data.
    """
    if isinstance(source, Mapping):
        document = load_mapping(source)
    elif isinstance(source, str) and "\n" in source:
        document = load_text(source)
    else:
        document = load_file(source)
    return _build(document, environ, base_url)


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
