"""TLS settings → what aiohttp's ``ssl=`` argument takes."""

from __future__ import annotations

import logging
import ssl

import aiohttp

from ..settings import TLS

log = logging.getLogger(__name__)

SSLArgument = ssl.SSLContext | aiohttp.Fingerprint | bool


def ssl_argument(tls: TLS) -> SSLArgument:
    """Verification on unless switched off; a CA bundle or client certificate
    gives a context; a pinned fingerprint replaces CA checks with an exact match."""
    if tls.fingerprint:
        return aiohttp.Fingerprint(bytes.fromhex(tls.fingerprint))
    if not tls.verify:
        return False
    if tls.ca_bundle is None and tls.client_cert is None:
        return True
    context = ssl.create_default_context(cafile=tls.ca_bundle)
    if tls.client_cert:
        context.load_cert_chain(tls.client_cert, tls.client_key)
    return context
