"""Throttles on logging in and signing up (Flask-Limiter; Redis when REDIS_URL is set).

- Login, per account: failed attempts only, so a user who gets in spends nothing and a
  guesser is stopped after a few tries.
- Login, per client address: every attempt, so one address cannot try many accounts.
- Sign-up, per client address: every attempt.
- The widget's identity exchange, per client address: every attempt.
- Addresses in RATELIMIT_EXEMPT_ADDRESSES (loopback by default) skip the two
  per-address limits, never the per-account one.

The JSON API and the HTML form share each counter. A refused attempt is answered 429
`rate_limited` with `Retry-After`, and no password is hashed for it.
"""

from __future__ import annotations

import time

from flask import current_app, request
from flask_limiter.util import get_remote_address

from ..extensions import limiter


def client_address() -> str:
    # The peer's address; with TRUSTED_PROXIES, ProxyFix has put the client's there.
    return get_remote_address() or "unknown"


def login_account() -> str:
    """The account a login attempt names, as the users table stores emails."""
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if hasattr(data, "get") else None
    if not isinstance(email, str):
        return "no-email"
    return email.strip().lower()[:254]


def _exempt_address() -> bool:
    return client_address() in current_app.config["RATELIMIT_EXEMPT_ADDRESSES"]


def _failed(response) -> bool:
    return response.status_code in (400, 401)


def _limit(setting: str, scope: str, key_func, **options):
    """A limit shared by the JSON and HTML routes it decorates, read from `setting`
    on every request (so the configuration, or a test, can change it)."""
    return limiter.shared_limit(
        lambda: current_app.config[setting],
        scope=scope,
        key_func=key_func,
        methods=["POST"],
        **options,
    )


login_per_account = _limit(
    "LOGIN_RATE_LIMIT_ACCOUNT", "login-account", login_account, deduct_when=_failed
)
login_per_address = _limit(
    "LOGIN_RATE_LIMIT_ADDRESS", "login-address", client_address, exempt_when=_exempt_address
)
widget_per_address = _limit(
    "WIDGET_SESSION_RATE_LIMIT_ADDRESS",
    "widget-address",
    client_address,
    exempt_when=_exempt_address,
)
register_per_address = _limit(
    "REGISTER_RATE_LIMIT_ADDRESS", "register-address", client_address, exempt_when=_exempt_address
)


def tarpit() -> None:
    """Wait before refusing: a client guessing in a loop gets one answer a second
    rather than a thousand, and the wait is a cooperative sleep that costs nothing."""
    from ..extensions import socketio

    delay = current_app.config["LOGIN_THROTTLE_DELAY"]
    if delay > 0:
        socketio.sleep(delay)


def retry_after_seconds() -> int:
    """How long the refused client should wait, for the error's message."""
    limit = limiter.current_limit
    return max(1, int(limit.reset_at - time.time())) if limit else 60
