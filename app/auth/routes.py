"""Auth endpoints: the JSON token API and the HTML pages that keep tokens in cookies."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_jwt_extended import (
    create_access_token,
    current_user,
    get_jwt,
    get_jwt_request_location,
    jwt_required,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)

from ..errors import ChatError
from ..extensions import csrf
from ..services.sessions import revoke_token
from ..services.users import authenticate, register_user
from ..services.views import user_view
from .forms import LoginForm, LogoutForm, RegisterForm
from .tokens import access_lifetime, issue_tokens

bp = Blueprint("auth", __name__)


# JSON API: bearer tokens, no cookies, so no CSRF token is needed.


@bp.post("/api/auth/register")
@csrf.exempt
def api_register():
    user = register_user(request.get_json(silent=True))
    return jsonify({"user": user_view(user)}), 201


@bp.post("/api/auth/login")
@csrf.exempt
def api_login():
    user = authenticate(request.get_json(silent=True))
    return jsonify({**issue_tokens(user), "user": user_view(user)})


@bp.post("/api/auth/refresh")
@csrf.exempt
@jwt_required(refresh=True, locations=["headers", "cookies"])
def api_refresh():
    """A new access token for a refresh token: from the Authorization header (JSON
    clients), or from the pages' HttpOnly cookie, with the CSRF double-submit header
    that flask-jwt-extended checks; then the new access token is set as a cookie too."""
    token = create_access_token(
        identity=str(current_user.id), additional_claims={"role": current_user.role}
    )
    response = jsonify(
        {"access_token": token, "token_type": "Bearer", "expires_in": access_lifetime()}
    )
    if get_jwt_request_location() == "cookies":
        set_access_cookies(response, token)
    return response


@bp.post("/api/auth/logout")
@csrf.exempt
@jwt_required()
def api_logout():
    revoke_token(get_jwt())
    return "", 204


# HTML pages: tokens travel in HttpOnly cookies; forms carry CSRF tokens.


def _log_in_with_cookies(user):
    tokens = issue_tokens(user)
    response = redirect(url_for("web.index"))
    set_access_cookies(response, tokens["access_token"])
    set_refresh_cookies(response, tokens["refresh_token"])
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate({"email": form.email.data, "password": form.password.data})
        except ChatError as exc:
            flash(exc.message, "error")
        else:
            return _log_in_with_cookies(user)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        data = {"name": form.name.data, "email": form.email.data, "password": form.password.data}
        try:
            user = register_user(data)
        except ChatError as exc:
            flash(exc.message, "error")
        else:
            return _log_in_with_cookies(user)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        revoke_cookie_tokens()
        response = redirect(url_for("auth.login"))
        unset_jwt_cookies(response)
        flash("You are logged out.", "info")
        return response
    return render_template("auth/logout.html", form=form)


def revoke_cookie_tokens() -> None:
    """End the page's tokens (and so its sockets), whatever state the cookies are in."""
    for refresh in (False, True):
        try:
            if verify_jwt_in_request(optional=True, refresh=refresh, locations=["cookies"]):
                revoke_token(get_jwt())
        except Exception:  # an expired or damaged cookie has nothing left to revoke
            continue
