"""A URL's origin, ``scheme://host[:port]``: the unit politeness, ``host_stats`` and ``plan`` count by."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin(url: str) -> str:
    """``url``'s origin, lower-case and without its userinfo (``user:password@`` is a secret, never shown or stored)."""
    # "scheme://netloc/..." without a full parse: the fetcher asks for every request.
    parts = url.split("/", 3)
    if len(parts) > 2 and url.startswith(("http://", "https://")):
        return f"{parts[0]}//{parts[2].rpartition('@')[2]}".lower()
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc.rpartition('@')[2]}".lower()
