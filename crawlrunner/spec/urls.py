"""The part of a URL written in a spec that can be checked before a run: its authority.

A port that is not a number, or an IPv6 address without its closing ``]``,
would otherwise only fail when the request is sent, as an ``invalid_url``
row for every request of the target. Credentials in the userinfo
(``https://user:pass@host/``) are sent (aiohttp turns them into Basic auth)
but are secrets: they are remembered so that they are masked wherever the
URL is written, like a value from ``${env.X}``.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote, urljoin

from ..overrides import ABSOLUTE_HTTP_URL
from ..secrets import Userinfo
from ..templates import Template, escape
from .env import Context
from .loader import SpecPath

# scheme://authority, the authority ending where the path, query or fragment starts.
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)([/?#])?")
MAX_PORT = 65535
# A URL's scheme, if it has one ("mailto:", "https:").
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def sendable(ctx: Context, text: str, path: SpecPath) -> re.Match[str] | None | bool:
    """False (reported) for a URL that can never be sent; else its scheme's match, None when it is relative."""
    if any(c in text for c in "\r\n\t"):
        ctx.problem(path, "URLs must not contain line breaks or tabs")
        return False
    scheme = SCHEME.match(text)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        ctx.problem(path, f"only http and https URLs can be fetched, not {scheme.group(1)}:")
        return False
    return scheme


def absolute_url(ctx: Context, text: str, path: SpecPath, base_url: str | None) -> str | None:
    """A literal URL of the spec (no placeholders), joined to ``base_url`` when relative; None (reported) if unusable.

    Checked as a target's URL is: its scheme, its port, and credentials in it
    remembered as secrets.
    """
    scheme = sendable(ctx, text, path)
    if scheme is False:
        return None
    if scheme is None:
        if base_url is None:
            ctx.problem(path, f"relative URL {text!r} needs http.base_url")
            return None
        text = urljoin(base_url, text)
    if not ABSOLUTE_HTTP_URL.match(text):
        ctx.problem(path, "expected an absolute http:// or https:// URL, or one relative to http.base_url")
        return None
    check_authority(ctx, Template.compile(escape(text)), path)
    return text


def check_authority(ctx: Context, template: Template, path: SpecPath) -> None:
    """Report a bad port or bracket in ``template``'s host; remember its userinfo as a secret.

    Only a literal authority is checked: one with a ``{placeholder}`` is only
    known when the request is rendered. Its userinfo is remembered all the
    same once its ``@`` is written before the placeholder
    (``https://user:pw@{host}/``): the host is unknown, the password is not.
    """
    match = _AUTHORITY.match(template.parts[0])
    if match is None:
        return
    userinfo, at, host = match.group(1).rpartition("@")
    if at and userinfo:
        remember_userinfo(ctx, userinfo)
    if len(template.parts) > 1 and match.group(2) is None:
        return  # the host or port goes on in a placeholder
    problem = host_problem(host)
    if problem is not None:
        ctx.problem(path, problem)


def host_problem(host: str) -> str | None:
    """What is wrong with ``host[:port]``, or None."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return f"unclosed '[' in the host {host!r}: an IPv6 address is written [::1]"
        rest = host[end + 1 :]
        if rest and not rest.startswith(":"):
            return f"unexpected {rest!r} after the IPv6 address in the host"
        port = rest[1:]
    elif "[" in host or "]" in host:
        return f"'[' and ']' in the host {host!r}: they may only enclose an IPv6 address, as in [::1]"
    else:
        port = host.rpartition(":")[2] if ":" in host else ""
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= MAX_PORT):
        return f"invalid port {port!r}: expected a number from 1 to {MAX_PORT}"
    return None


def remember_userinfo(ctx: Context, userinfo: str) -> None:
    """``user:password`` from a URL, as written, decoded, and as the Basic header it becomes.

    The userinfo is masked wherever it stands as one (``//…@``), at any
    length. It is masked everywhere else too (a server echoing it, a log
    quoting it decoded) only when it is distinctive, and so is the password
    on its own (which still shows if the user name is re-encoded): a common
    word as a password ("admin:password") would otherwise mask that word
    all over the records. The Basic header is always masked: it is base64,
    nothing else looks like it.
    """
    user, _, password = userinfo.partition(":")
    decoded = f"{unquote(user)}:{unquote(password)}"
    basic = base64.b64encode(decoded.encode("utf-8")).decode("ascii")
    for form in dict.fromkeys([userinfo, unquote(userinfo)]):
        ctx.secrets.append(form if distinctive(form) else Userinfo(form))
    ctx.secrets.extend(form for form in dict.fromkeys([password, unquote(password)]) if distinctive(form))
    ctx.secrets.append(basic)


# A value this long with something besides letters in it is unlikely to
# turn up in text by chance.
DISTINCTIVE_LENGTH = 8


def distinctive(value: str) -> bool:
    """Whether ``value`` can be masked everywhere without masking ordinary text."""
    return len(value) >= DISTINCTIVE_LENGTH and not value.isalpha()
