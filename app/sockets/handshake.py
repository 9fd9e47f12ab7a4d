"""Connect-time authentication: find the access token a handshake carries and check it.

Three places are accepted (PROTOCOL.md, "Connecting"): the `auth` payload, an
`Authorization: Bearer` header, and the HTML login's access cookie, which counts only
when the handshake comes from the app's own origin (else any site could ride on it).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from werkzeug.http import parse_cookie

from ..errors import Unauthorized
from ..registry import Identity
from ..services.tokens import check_access_token


def authenticate_handshake(auth: object, environ: dict) -> tuple[Identity, dict]:
    """Who a socket's handshake stands for, and the token's claims; else `Unauthorized`."""
    return check_access_token(find_token(auth, environ))


def find_token(auth: object, environ: dict) -> str:
    if isinstance(auth, dict) and auth.get("token") is not None:
        token = auth["token"]
        if not isinstance(token, str):
            raise Unauthorized("The token must be a string.")
        return token
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use 'Authorization: Bearer <token>'.")
        return token.strip()
    cookie_name = current_app.config["JWT_ACCESS_COOKIE_NAME"]
    token = parse_cookie(environ.get("HTTP_COOKIE", "")).get(cookie_name)
    if token:
        if not is_same_origin(environ):
            raise Unauthorized("Cookies are accepted only from this site's own pages.")
        return token
    raise Unauthorized("No token.")


def is_same_origin(environ: dict) -> bool:
    """Whether a cookie-carrying handshake comes from a page this app served.

    Browsers always send `Origin` on WebSocket handshakes and cross-site requests; a
    same-origin polling GET may leave it out, and then `Sec-Fetch-Site` vouches for it.
    """
    origin = environ.get("HTTP_ORIGIN")
    host = environ.get("HTTP_HOST", "")
    if origin:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host
    return environ.get("HTTP_SEC_FETCH_SITE") == "same-origin"
