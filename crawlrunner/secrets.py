"""Secrets from the environment, and the redaction that keeps them out of output.

A spec never holds a token itself; it says ``${env.API_TOKEN}``. Every value
that came from the environment is treated as secret: it is sent on the wire
but masked wherever crawlrunner writes text (logs, the fetch log, error
messages), because crawlrunner cannot tell a harmless base URL from a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, quote_plus

from .errors import MissingEnvironmentVariable, MissingSecret

MASK = "***"

# ${env.NAME} or ${env.NAME:-default}; NAME follows POSIX shell rules.
ENV_REFERENCE = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# How a secret may be spelled inside stored text: as is, percent-encoded, or
# escaped inside a JSON string.
# Characters kept as they are when a value from the environment begins a URL.
URL_SYNTAX = ":/?#[]@!$&'()*,;=%~"

_SPELLINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "qu": lambda s: quote(s, safe=URL_SYNTAX),
    "q": lambda s: quote(s, safe=""),
    "qp": quote_plus,
    "qs": quote,
    "j": lambda s: json.dumps(s)[1:-1],
    "ju": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
}


class Userinfo(str):
    """A URL's ``user:password`` masked only where it stands as a userinfo.

    A short or plain one (``a:b``, ``admin``) would also mask the same text
    where it has nothing to do with the URL, so it is matched only after
    ``//`` and before ``@``, at any length. A distinctive one is given to the
    Redactor as a plain ``str`` instead, masked everywhere.
    """


# A userinfo as a URL writes it: "//" before, "@" after. Spelled as written
# or percent-encoded (a URL re-encoded on the way), never JSON-escaped.
_USERINFO_SPELLINGS = ("raw", "qu", "q")
_TOKEN = re.compile(r"\$\{secret:([0-9a-f]{16}):(raw|qp|qs|qu|q|ju|j)\}")


def interpolate(
    text: str, environ: Mapping[str, str] | None = None, *, escape: Callable[[str], str] | None = None
) -> tuple[str, list[str]]:
    """Replace every ``${env.X}`` in ``text`` (each value passed through ``escape``).

    Returns the new text and the substituted values (the secrets to redact).
    Raises MissingEnvironmentVariable for an unset variable without a default.
    """
    env = os.environ if environ is None else environ
    found: list[str] = []
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None:
            if default is None:
                missing.append(name)
                return ""
            value = default
        found.append(value)
        return escape(value) if escape else value

    result = ENV_REFERENCE.sub(substitute, text)
    if missing:
        raise MissingEnvironmentVariable(missing)
    return result, found


# How many tokens fetched at run time a Redactor masks at once (see ``Redactor.add``).
KEPT_ADDED = 8


class Redactor:
    """Masks known secret values in any text before it leaves the process."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._given = list(secrets)
        self._added: list[str] = []  # tokens fetched while the run goes (``add``), oldest first
        self._compile(self._given)

    def add(self, secret: str) -> None:
        """Mask ``secret`` from now on too: a token fetched while the run goes.

        Only the last ``KEPT_ADDED`` are kept: every value is another
        alternative the pattern tries wherever text is masked (each record
        value, each log line), and a token replaced hours ago is sent nowhere.
        """
        if secret in self._added or secret in self._given:
            return
        self._added = [*self._added, secret][-KEPT_ADDED:]
        self._compile(self._given + self._added)

    def _compile(self, secrets: list[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        # Very short values (a default of "" or "1") would mask random text
        # and protect nothing; they are not treated as secrets.
        # A secret also travels percent-encoded inside URLs, so those
        # spellings are masked too.
        plain = {s for s in secrets if not isinstance(s, Userinfo) and len(s) >= 4}
        self.values = tuple(sorted(plain, key=len, reverse=True))
        # Matched only between "//" and "@" (see Userinfo), so at any length.
        self.userinfos = tuple(sorted({str(s) for s in secrets if isinstance(s, Userinfo) and s} - plain))
        spellings = {spell(s): (s, name) for s in self.values for name, spell in _SPELLINGS.items()}
        anchored = {_SPELLINGS[name](s): (s, name) for s in self.userinfos for name in _USERINFO_SPELLINGS}
        self._secrets = tuple(sorted(spellings, key=len, reverse=True))
        self._spelled = {**anchored, **spellings}
        alternatives = [re.escape(s) for s in self._secrets]
        if anchored:
            inner = "|".join(re.escape(s) for s in sorted(anchored, key=len, reverse=True))
            alternatives.append(f"(?<=//)(?:{inner})(?=@)")
        # One pass over the text: a replacement is never scanned again.
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None
        self._bytes_pattern = re.compile(self._pattern.pattern.encode("utf-8")) if anchored and self._pattern else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def bytes(self, data: bytes) -> bytes:
        """``data`` with every secret (as UTF-8, raw or percent-encoded) masked."""
        if self._bytes_pattern is not None:
            return self._bytes_pattern.sub(MASK.encode(), data)
        for secret in self._secrets:
            encoded = secret.encode("utf-8")
            if encoded in data:
                data = data.replace(encoded, MASK.encode())
        return data

    def tokenize(self, text: str) -> str:
        """``text`` with each secret replaced by a reference to it (for stored requests)."""
        if self._pattern is None:
            return text

        def reference(match: re.Match[str]) -> str:
            value, spelling = self._spelled[match.group(0)]
            return f"${{secret:{hashlib.sha256(value.encode()).hexdigest()[:16]}:{spelling}}}"

        return self._pattern.sub(reference, text)

    def detokenize(self, text: str) -> str:
        """The inverse of ``tokenize``, with the secrets known now."""
        if "${secret:" not in text:
            return text
        known = {hashlib.sha256(v.encode()).hexdigest()[:16]: v for v in self.values + self.userinfos}

        def restore(match: re.Match[str]) -> str:
            value = known.get(match.group(1))
            if value is None:
                raise MissingSecret("a secret this request used is no longer in the spec or environment")
            return _SPELLINGS[match.group(2)](value)

        return _TOKEN.sub(restore, text)


def mask_references(text: str) -> str:
    """Stored text with its secret references (``tokenize``'s) masked: for showing, never for sending."""
    return _TOKEN.sub(MASK, text)
