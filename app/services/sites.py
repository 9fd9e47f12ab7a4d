"""Sites: a business's own site vouches for its logged-in users, and they chat.

An admin registers a site (`flask --app wsgi sites add`): a public key for the snippet,
a secret shown once, and the origins that may frame the widget. The site's backend
signs each logged-in user's identity as a JWT (HS256 with the secret; `sub`, `email`,
optionally `name`, `exp`, and `aud` equal to the key when present). The widget trades
that identity for one of our ordinary sessions (`exchange_identity`).

A site's customers are keyed by (site, `sub`): an identity never reaches an account of
ours that shares its email, nor one of another site. Removing a site or rotating its
secret refuses identities at once (every exchange reads the site) and ends the sessions
of its customers, which closes their sockets.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..database import transaction
from ..errors import Forbidden, NotFound, Unauthorized, ValidationError
from ..extensions import db
from ..models import Site, User
from .payloads import iso
from .schemas import AddSite, IdentityExchange, SiteRef, parse

# An identity may be valid for at most this long: a leaked one is not good for long.
MAX_IDENTITY_LIFETIME = timedelta(hours=24)
NO_PASSWORD = "!"  # never the output of a password hash: nothing matches it
REFUSED = "The identity is not valid."


def normalise_origin(text: str) -> str:
    """`https://Shop.example:443/` -> `https://shop.example`; ValidationError if `text`
    is not an http(s) origin (a scheme and a host, no path, query or credentials)."""
    parts = urlsplit(text.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise ValidationError(
            f"{text!r} is not an origin: write the scheme and host, like https://shop.example",
            {"origins": "must be http(s)://host[:port]"},
        )
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _login_url(text: str | None) -> str | None:
    if not text:
        return None
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("The login link must be an http(s) address.", {"login_url": "bad"})
    return text.strip()


def add_site(name: str, origins: list[str], login_url: str | None = None) -> tuple[Site, str]:
    """Register a site; returns it and its secret (shown to the admin once)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError("The name must be 1 to 100 characters.", {"name": "length"})
    if not origins:
        raise ValidationError("Give at least one origin.", {"origins": "missing"})
    normal = list(dict.fromkeys(normalise_origin(o) for o in origins))
    secret = secrets.token_urlsafe(32)
    site = Site(
        key="site_" + secrets.token_urlsafe(16),
        name=name,
        secret=secret,
        origins=" ".join(normal),
        login_url=_login_url(login_url),
    )
    with transaction() as session:
        session.add(site)
    return site, secret


def list_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.id)))


def active_site(key: object) -> Site | None:
    if not isinstance(key, str) or len(key) > 40:
        return None
    return db.session.scalar(select(Site).where(Site.key == key, Site.removed_at.is_(None)))


def _site_or_404(key: str) -> Site:
    site = active_site(key)
    if site is None:
        raise NotFound("No such site.")
    return site


def rotate_secret(key: str) -> str:
    """A new secret: identities signed with the old one are refused from now on, and
    the sessions of the site's customers end (their sockets close)."""
    site = _site_or_404(key)
    secret = secrets.token_urlsafe(32)
    with transaction():
        site.secret = secret
    _end_customer_sessions(site.id)
    return secret


def remove_site(key: str) -> None:
    """Refuse the site's identities from now on and end its customers' sessions. Their
    accounts and conversations stay, for the team's history."""
    site = _site_or_404(key)
    with transaction():
        site.removed_at = datetime.now(UTC)
    _end_customer_sessions(site.id)


def _end_customer_sessions(site_id: int) -> None:
    from .tokens import end_all_sessions

    for user_id in db.session.scalars(select(User.id).where(User.site_id == site_id)).all():
        end_all_sessions(user_id)


# The inbox's settings: the same actions as the `flask sites` commands, for admins.


def _only_admins(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("Sites are managed by the support team's admins.")


def site_view(site: Site) -> dict:
    """The contract's Site: never its secret, which is shown once when made or rotated."""
    return {
        "site_key": site.key,
        "name": site.name,
        "origins": site.origin_list,
        "login_url": site.login_url,
        "created_at": iso(site.created_at),
    }


def sites_for_team(user: User, data: object) -> list[dict]:
    _only_admins(user)
    return [site_view(site) for site in list_sites() if site.removed_at is None]


def add_site_for_team(user: User, data: object) -> dict:
    _only_admins(user)
    form = parse(AddSite, data)
    origins = [o for o in form.origins if o.strip()]
    site, secret = add_site(form.name, origins, form.login_url or None)
    return {"site": site_view(site), "secret": secret}


def rotate_secret_for_team(user: User, data: object) -> dict:
    _only_admins(user)
    form = parse(SiteRef, data)
    return {"site_key": form.site_key, "secret": rotate_secret(form.site_key)}


def remove_site_for_team(user: User, data: object) -> None:
    _only_admins(user)
    remove_site(parse(SiteRef, data).site_key)


def verify_identity(site: Site, identity: str) -> dict:
    """The identity's claims, checked: HS256 with the site's secret, `exp` present, in
    the future and at most MAX_IDENTITY_LIFETIME ahead, `sub` and `email` present, and
    `aud` (when present) the site's key. Unauthorized otherwise."""
    try:
        # Which audience to check is read from the claims before the signature is;
        # the signature is checked either way, with HS256 only ("none" included out).
        unverified = jwt.decode(identity, options={"verify_signature": False})
        claims = jwt.decode(
            identity,
            site.secret,
            algorithms=["HS256"],
            audience=site.key if "aud" in unverified else None,
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError:
        raise Unauthorized(REFUSED) from None
    expires = claims["exp"]
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise Unauthorized(REFUSED)
    if datetime.fromtimestamp(expires, UTC) > datetime.now(UTC) + MAX_IDENTITY_LIFETIME:
        raise Unauthorized("The identity is valid for more than 24 hours; sign shorter ones.")
    return claims


def exchange_identity(data: object) -> User:
    """The site's customer an identity names, made or brought up to date (name, email).
    Unauthorized, with nothing created, for any identity `verify_identity` refuses."""
    form = parse(IdentityExchange, data)
    site = active_site(form.site_key)
    if site is None:
        raise Unauthorized(REFUSED)
    claims = verify_identity(site, form.identity)
    who = _identity_fields(claims)
    for _attempt in range(2):  # two first visits at once: the unique key decides
        try:
            with transaction() as session:
                user = session.scalar(
                    select(User).where(User.site_id == site.id, User.external_id == who["sub"])
                )
                if user is None:
                    user = User(
                        site_id=site.id,
                        external_id=who["sub"],
                        email=who["email"],
                        name=who["name"],
                        role="customer",
                        password_hash=NO_PASSWORD,
                    )
                    session.add(user)
                else:
                    user.email, user.name = who["email"], who["name"]
                session.flush()
            return user
        except IntegrityError:
            continue
    raise Unauthorized(REFUSED)


def unread_for_identity(data: object) -> tuple[Site, int]:
    """How many of the team's messages the identity's customer has not read (0 for a
    customer not seen yet: nothing is created). Unauthorized as `exchange_identity`."""
    from ..models import ChatRoom

    form = parse(IdentityExchange, data)
    site = active_site(form.site_key)
    if site is None:
        raise Unauthorized(REFUSED)
    who = _identity_fields(verify_identity(site, form.identity))
    unread = db.session.scalar(
        select(ChatRoom.customer_unread)
        .join(User, User.id == ChatRoom.customer_id)
        .where(User.site_id == site.id, User.external_id == who["sub"])
    )
    return site, unread or 0


def _identity_fields(claims: dict) -> dict:
    sub, email, name = claims.get("sub"), claims.get("email"), claims.get("name")
    if not isinstance(sub, str) or not 1 <= len(sub) <= 255 or "\x00" in sub:
        raise Unauthorized(REFUSED)
    if not isinstance(email, str) or "@" not in email or len(email) > 254 or "\x00" in email:
        raise Unauthorized(REFUSED)
    email = User.normalise_email(email)
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        name = email.split("@", 1)[0]
    return {"sub": sub, "email": email, "name": name.strip()[:100]}
