"""flask-jwt-extended's callbacks: HTTP asks the token service whether a token is alive,
and every token failure is answered with the contract's 401 `unauthorized`."""

from __future__ import annotations

from flask import Flask, jsonify

from ..errors import error_body
from ..extensions import jwt
from ..services import tokens


def register_jwt_callbacks(app: Flask) -> None:
    def refuse(message: str):
        return jsonify(error_body("unauthorized", message)), 401

    @jwt.user_lookup_loader
    def load_user(_header, claims):
        return tokens.user_from_claims(claims)

    @jwt.token_in_blocklist_loader
    def revoked(_header, claims):
        return not tokens.family_is_alive(claims)

    @jwt.token_verification_loader
    def verify_claims(_header, claims):
        return tokens.claims_are_complete(claims)

    jwt.user_lookup_error_loader(lambda _h, _c: refuse("The token's user no longer exists."))
    jwt.token_verification_failed_loader(lambda _h, _c: refuse("The token is not valid."))
    jwt.expired_token_loader(lambda _h, _c: refuse("The token has expired."))
    jwt.invalid_token_loader(lambda reason: refuse("The token is not valid."))
    jwt.unauthorized_loader(lambda reason: refuse("Log in first."))
    jwt.needs_fresh_token_loader(lambda _h, _c: refuse("Log in again."))
    jwt.revoked_token_loader(lambda _h, _c: refuse("The session has ended; log in again."))
