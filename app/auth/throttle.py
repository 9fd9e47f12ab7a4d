"""Throttles on logging in and signing up (Flask-Limiter; Redis when REDIS_URL is set).

- Login, per account: failed attempts only, so a user who gets in spends nothing and a
  guesser is stopped after a few tries. A locked account still lets in an attempt from an
  address that has not failed on it in the window: a stranger who knows an email cannot
  keep its owner out (`guard_account`; docs/SECURITY.md has what that costs).
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
from functools import wraps

from flask import abort, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse

from ..errors import ChatError
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


def guard_account(view):
    """The per-account login limit. Two failure counters, in the limiter's storage (Redis
    when REDIS_URL is set, so every process shares them): the account's, and the
    account's from this client address. Past the account's limit, an attempt is refused
    only from an address that has itself failed on the account within the window; any
    other address may still try, and its failure is counted on both."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if request.method != "POST":
            return view(*args, **kwargs)
        limit = parse(current_app.config["LOGIN_RATE_LIMIT_ACCOUNT"])
        counters = limiter.limiter
        account = ("login-account-failures", login_account())
        pair = ("login-address-failures", login_account(), client_address())
        if not counters.test(limit, *account):
            here = counters.get_window_stats(limit, *pair)
            if here.remaining < limit.amount:  # this address has been failing
                g.login_retry_after = counters.get_window_stats(limit, *account).reset_time
                abort(429)
        status = None
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except ChatError as refused:  # the JSON API raises its 400s and 401s
            status = refused.status
            raise
        else:
            status = response.status_code
            return response
        finally:
            if status in (400, 401):
                counters.hit(limit, *account)
                counters.hit(limit, *pair)

    return guarded


login_per_account = guard_account
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
    reset_at = g.get("login_retry_after")
    if reset_at is None:
        limit = limiter.current_limit
        reset_at = limit.reset_at if limit else time.time() + 60
    return max(1, int(reset_at - time.time()))
