"""Tokens: issuing, checking, rotating and revoking them. One rule decides which are alive.

A login starts a *family*, a row of `token_families`. The family's refresh token and
every access token minted in it carry its id as the `fam` claim. Each refresh rotates:
the refresh token used is spent and a new one replaces it. Using a spent refresh token
again means it was stolen (or copied), so the whole family is revoked, the OAuth 2.1
"reuse detection". Logout revokes the family too. Either way every socket opened with
a token of the family is closed.

A token is alive when PyJWT accepts its signature and expiry, it has every claim this
server issues (`exp`, `sub`, `jti`, `fam`, `type`), its user exists, and its family is
neither revoked nor past its end. HTTP (flask-jwt-extended's callbacks), the pages'
cookies and the socket handshake all ask `check_claims`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from sqlalchemy import bindparam, delete, select, update

from ..database import transaction
from ..errors import Unauthorized
from ..extensions import db
from ..models import TokenFamily, User, utcnow
from ..registry import Identity
from .expiry import end_sockets_of_family

REQUIRED = {"exp": int, "sub": str, "jti": str, "fam": str, "type": str}


def access_lifetime() -> int:
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def _refresh_lifetime() -> timedelta:
    return current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]


def _new_id() -> str:
    return uuid.uuid4().hex


# --- issuing -------------------------------------------------------------------------


def start_session(user: User, access_expires: timedelta | None = None) -> dict:
    """Log `user` in: a new family, and its first access and refresh tokens."""
    family, refresh_jti = _new_id(), str(uuid.uuid4())
    expires = utcnow() + _refresh_lifetime()
    with transaction() as session:
        session.execute(delete(TokenFamily).where(TokenFamily.expires_at < utcnow()))
        session.add(
            TokenFamily(id=family, user_id=user.id, refresh_jti=refresh_jti, expires_at=expires)
        )
        language = _request_language()
        if language is not None and user.locale != language:  # emails come in this language
            session.execute(update(User).where(User.id == user.id).values(locale=language))
    return {
        "access_token": mint_access_token(user, family, access_expires),
        "refresh_token": _mint_refresh_token(user.id, family, refresh_jti),
        "token_type": "Bearer",
        "expires_in": access_lifetime(),
    }


def _request_language() -> str | None:
    """The language of the page or API request that logs the user in (None outside
    one)."""
    from flask import has_request_context

    if not has_request_context():
        return None
    from ..i18n import current_language

    return current_language()


def mint_access_token(user: User, family: str, expires: timedelta | None = None) -> str:
    return create_access_token(
        identity=str(user.id),
        additional_claims={"role": user.role, "fam": family},
        expires_delta=expires,  # None: the configured lifetime
    )


def _mint_refresh_token(user_id: int, family: str, jti: str) -> str:
    return create_refresh_token(
        identity=str(user_id), additional_claims={"fam": family, "jti": jti}
    )


# --- checking ------------------------------------------------------------------------


def decode(encoded: str, *, allow_expired: bool = False) -> dict | None:
    """The claims of a token this server signed, else None (bad signature, expired,
    malformed, wrong algorithm). The CSRF double submit is the caller's business."""
    try:
        return decode_token(encoded, allow_expired=allow_expired)
    except (pyjwt.InvalidTokenError, JWTExtendedException):
        return None


def claims_are_complete(claims: dict) -> bool:
    """Every token we honour expires, names its user and family, and can be told apart."""
    return all(isinstance(claims.get(name), kind) for name, kind in REQUIRED.items())


def family_is_alive(claims: dict) -> bool:
    query = select(TokenFamily.id).where(*ALIVE)
    return db.session.scalar(query, _alive_values(claims)) is not None


def check_claims(claims: dict, kind: str = "access") -> User:
    """The user of a decoded token, if the token is alive; else `unauthorized`.

    One query: the user, joined to a live family of theirs."""
    if claims.get("type") != kind or not claims_are_complete(claims):
        raise Unauthorized("The token is not valid.")
    query = (
        select(User)
        .join(TokenFamily, TokenFamily.user_id == User.id)
        .where(*ALIVE, User.deactivated_at.is_(None))
    )
    user = db.session.scalar(query, _alive_values(claims))
    if user is None:
        raise Unauthorized("The session has ended; log in again.")
    return user


def check_access_token(encoded: str) -> tuple[Identity, dict]:
    """Who an encoded access token stands for, and its claims (the socket handshake):
    the same rule as `check_claims`, reading only the four columns a socket keeps."""
    claims = decode(encoded)
    if claims is None:
        raise Unauthorized("The token is not valid.")
    if claims.get("type") != "access" or not claims_are_complete(claims):
        raise Unauthorized("The token is not valid.")
    # The Core connection of the request's session, and a statement built once: each
    # socket's connect skips the ORM's execution and SQLAlchemy's cache-key walk.
    row = db.session.connection().execute(HANDSHAKE_QUERY, _alive_values(claims)).one_or_none()
    if row is None:
        raise Unauthorized("The session has ended; log in again.")
    return Identity(*row), claims


# The one rule: the token's family exists, is the token's user's, has not been revoked
# and has not ended. Queries that also want the user join it on user_id.
ALIVE = (
    TokenFamily.id == bindparam("family"),
    TokenFamily.user_id == bindparam("user_id"),
    TokenFamily.revoked_at.is_(None),
    TokenFamily.expires_at > bindparam("now", type_=TokenFamily.expires_at.type),
)


def _alive_values(claims: dict) -> dict:
    return {"family": claims.get("fam"), "user_id": _user_id(claims), "now": utcnow()}


HANDSHAKE_QUERY = (
    select(User.id, User.name, User.email, User.role)
    .join(TokenFamily, TokenFamily.user_id == User.id)
    .where(*ALIVE, User.deactivated_at.is_(None))
)


def user_from_claims(claims: dict) -> User | None:
    """The token's user, unless deactivated (a login racing a deactivation gets a token
    that works nowhere)."""
    user_id = _user_id(claims)
    if user_id is None:
        return None
    return db.session.scalar(select(User).where(User.id == user_id, User.deactivated_at.is_(None)))


def _user_id(claims: dict) -> int | None:
    try:
        return int(claims["sub"])
    except (KeyError, TypeError, ValueError):
        return None


# --- rotating ------------------------------------------------------------------------


def rotate(claims: dict) -> dict:
    """Spend a refresh token for a new access token and a new refresh token.

    The swap is one conditional UPDATE: of two requests racing with the same token,
    one rotates and the other finds it spent. A spent token revokes its family.
    """
    user = check_claims(claims, kind="refresh")
    family, new_jti = claims["fam"], str(uuid.uuid4())
    with transaction() as session:
        rotated = session.execute(
            update(TokenFamily)
            .where(
                TokenFamily.id == family,
                TokenFamily.refresh_jti == claims["jti"],
                TokenFamily.revoked_at.is_(None),
            )
            .values(refresh_jti=new_jti, expires_at=utcnow() + _refresh_lifetime())
            .execution_options(synchronize_session=False)
        ).rowcount
    if not rotated:
        current_app.logger.warning("spent refresh token reused: family %s revoked", family)
        revoke_family(family, user.id)
        raise Unauthorized("This refresh token was already used; log in again.")
    return {
        "access_token": mint_access_token(user, family),
        "refresh_token": _mint_refresh_token(user.id, family, new_jti),
        "token_type": "Bearer",
        "expires_in": access_lifetime(),
    }


# --- revoking ------------------------------------------------------------------------


def end_session(claims: dict) -> None:
    """Log out the family a token (access or refresh, expired or not) belongs to."""
    user_id, family = _user_id(claims), claims.get("fam")
    if user_id is None or not isinstance(family, str):
        raise Unauthorized("The token is not valid.")
    revoke_family(family, user_id)


def end_all_sessions(user_id: int) -> None:
    """Log a user out everywhere: every family of theirs, and every socket."""
    families = db.session.scalars(
        select(TokenFamily.id).where(
            TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None)
        )
    ).all()
    for family in families:
        revoke_family(family, user_id)


def revoke_family(family: str, user_id: int) -> None:
    """Refuse every token of the family from now on and close the sockets opened with
    them, on every process."""
    with transaction() as session:
        session.execute(
            update(TokenFamily)
            .where(
                TokenFamily.id == family,
                TokenFamily.user_id == user_id,
                TokenFamily.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
    end_sockets_of_family(user_id, family)
