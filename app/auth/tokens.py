"""JWT policy: which tokens are good, what they carry, and how a failure is answered.

HTTP and the socket handshake both end up in `user_from_claims`, so a token that is
refused in one place is refused in the other.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from ..errors import Unauthorized, error_body
from ..extensions import db, jwt
from ..models import User
from ..services.sessions import is_revoked


def issue_tokens(user: User) -> dict:
    """The login answer's token fields for `user`."""
    return {
        "access_token": create_access_token(
            identity=str(user.id), additional_claims={"role": user.role}
        ),
        "refresh_token": create_refresh_token(identity=str(user.id)),
        "token_type": "Bearer",
        "expires_in": access_lifetime(),
    }


def access_lifetime() -> int:
    return int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())


def claims_are_complete(claims: dict) -> bool:
    """Every token we honour expires, names its user, and can be revoked (has a jti)."""
    return (
        isinstance(claims.get("exp"), int)
        and isinstance(claims.get("sub"), str)
        and isinstance(claims.get("jti"), str)
    )


def user_from_claims(claims: dict) -> User | None:
    try:
        return db.session.get(User, int(claims["sub"]))
    except (KeyError, TypeError, ValueError):
        return None


def user_for_access_token(token: str) -> tuple[User, dict]:
    """The user behind an encoded access token, else `unauthorized` (for the socket)."""
    try:
        claims = decode_token(token)
    except Exception:  # any decoding failure: bad signature, expired, malformed, alg
        raise Unauthorized("The token is not valid.") from None
    if claims.get("type") != "access" or not claims_are_complete(claims):
        raise Unauthorized("The token is not valid.")
    if is_revoked(claims.get("jti")):
        raise Unauthorized("The token was revoked.")
    user = user_from_claims(claims)
    if user is None:
        raise Unauthorized("The token's user no longer exists.")
    return user, claims


def register_jwt_callbacks(app: Flask) -> None:
    """Answer every token failure with the contract's 401 `unauthorized`."""

    def refuse(message: str):
        return jsonify(error_body("unauthorized", message)), 401

    @jwt.user_lookup_loader
    def load_user(_header, claims):
        return user_from_claims(claims)

    @jwt.token_in_blocklist_loader
    def revoked(_header, claims):
        return is_revoked(claims.get("jti"))

    @jwt.token_verification_loader
    def verify_claims(_header, claims):
        return claims_are_complete(claims)

    jwt.user_lookup_error_loader(lambda _h, _c: refuse("The token's user no longer exists."))
    jwt.token_verification_failed_loader(lambda _h, _c: refuse("The token is not valid."))
    jwt.expired_token_loader(lambda _h, _c: refuse("The token has expired."))
    jwt.invalid_token_loader(lambda reason: refuse("The token is not valid."))
    jwt.unauthorized_loader(lambda reason: refuse("Log in first."))
    jwt.needs_fresh_token_loader(lambda _h, _c: refuse("Log in again."))
    jwt.revoked_token_loader(lambda _h, _c: refuse("The token was revoked."))
