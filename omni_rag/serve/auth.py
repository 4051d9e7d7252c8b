"""Who may call the API: loopback by default, a key for anything reachable from elsewhere.

The key is accepted the ways clients already send one: ``Authorization: Bearer K``, Qdrant's
``api-key`` header, or (for the page's own ``<video>``/``<img>`` requests, which cannot carry
headers) the ``omni_rag_api_key`` cookie the page sets after asking for the key once.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from urllib.parse import unquote

from starlette.requests import Request

#: Environment variable holding the key when ``--api-key`` is not given.
API_KEY_ENV = "OMNI_RAG_API_KEY"
#: Cookie the page stores the key in (``SameSite=Strict``, so other sites cannot ride on it).
KEY_COOKIE = "omni_rag_api_key"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_api_key(given: str | None) -> str | None:
    """``--api-key``, else ``$OMNI_RAG_API_KEY``; blank counts as none."""
    key = given if given is not None else os.environ.get(API_KEY_ENV)
    return key if key and key.strip() else None


def bind_problem(host: str, api_key: str | None) -> str | None:
    """Why the server must not start on ``host`` (``None`` when it may)."""
    if is_loopback(host) or api_key is not None:
        return None
    return (
        f"--host {host} makes the server reachable from other machines: give --api-key KEY "
        f"(or set {API_KEY_ENV}) so only clients with the key can search and read your files"
    )


def presented_key(request: Request) -> str | None:
    """The key a request carries, from whichever place it was put."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    cookie = request.cookies.get(KEY_COOKIE)
    return request.headers.get("api-key") or (unquote(cookie) if cookie else None)


def authorized(request: Request, api_key: str | None) -> bool:
    """Whether ``request`` may use the API (always, when the server has no key)."""
    if api_key is None:
        return True
    given = presented_key(request)
    return given is not None and hmac.compare_digest(given.encode(), api_key.encode())
