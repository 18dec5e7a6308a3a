"""What every step of building a spec shares: where problems go, ``${env.X}``, secrets, files.

One ``Context`` per build. Each builder module (``layering``, ``requests``,
``extraction``, ``pagination``, ``checks``) takes it as its first argument
and reports through ``problem`` instead of raising, so a spec with several
mistakes lists them all at once.

``${env.X}`` is resolved value by value so an unset variable is reported
where it is used, and every substituted value is remembered as a secret for
redaction. Values that are credentials whether or not they come from the
environment (a password written in the spec) are remembered too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import MissingEnvironmentVariable, SpecProblem
from ..secrets import URL_SYNTAX, interpolate
from ..templates import escape
from .loader import Document, SpecPath


class Context:
    """The state of one build: the document, its problems and its secrets."""

    def __init__(self, document: Document, environ: Mapping[str, str] | None) -> None:
        self.document = document
        self.environ = environ
        self.problems: list[SpecProblem] = []
        self.warnings: list[SpecProblem] = []  # the spec runs, but the user should know
        self.secrets: list[str] = []
        self.unresolved: set[SpecPath] = set()  # values whose ${env.X} is unset
        # A spec with no file ("<spec>" text, "<stdin>"): seed files are relative to the current directory.
        in_file = not (document.file.startswith("<") and document.file.endswith(">"))
        self.spec_dir = Path(document.file).parent if in_file else Path.cwd()

    def problem(self, path: SpecPath, message: str, *, key: bool = False) -> None:
        self.problems.append(self.document.problem(path, message, key=key))

    def warn(self, path: SpecPath, message: str) -> None:
        self.warnings.append(self.document.problem(path, message))

    # In templates, a value from the environment is literal text: its braces
    # are escaped so a token like "ab{c}" is sent as written.
    def resolve(self, value: Any, path: SpecPath, *, template: bool = False, url: bool = False) -> Any:
        """``value`` with every ``${env.X}`` substituted (recursively for lists and mappings)."""
        if isinstance(value, str):
            return value if "${" not in value else self._resolve_text(value, path, template=template, url=url)
        if isinstance(value, dict):
            return {k: self.resolve(v, path + (k,), template=template) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, path + (i,), template=template) for i, v in enumerate(value)]
        return value

    def _resolve_text(self, value: str, path: SpecPath, *, template: bool, url: bool) -> str:
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

    def spec_file(self, name: str | None, path: SpecPath) -> str | None:
        """``name`` made absolute against the spec's folder; a missing file is a problem."""
        if name is None:
            return None
        file = (self.spec_dir / name).resolve()
        if not file.is_file():
            self.problem(path, f"file {name!r} not found (looked in {file.parent})")
        return str(file)
