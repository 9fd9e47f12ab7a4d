"""Auth endpoints: the JSON token API and the HTML pages that keep tokens in cookies."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_jwt_extended import (
    get_jwt,
    get_jwt_request_location,
    jwt_required,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)

from ..errors import ChatError, Conflict, Deactivated, NotFound, Unauthorized, ValidationError
from ..extensions import csrf
from ..services import team, tokens
from ..services.payloads import user_view
from ..services.users import authenticate, register_user
from . import throttle
from .forms import AcceptInviteForm, LoginForm, LogoutForm, RegisterForm

bp = Blueprint("auth", __name__)


# JSON API: bearer tokens, no cookies, so no CSRF token is needed.


@bp.post("/api/auth/register")
@csrf.exempt
@throttle.register_per_address
def api_register():
    user = register_user(request.get_json(silent=True))
    return jsonify({"user": user_view(user)}), 201


@bp.post("/api/auth/login")
@csrf.exempt
@throttle.login_per_address
@throttle.login_per_account
def api_login():
    user = authenticate(request.get_json(silent=True))
    return jsonify({**tokens.start_session(user), "user": user_view(user)})


@bp.post("/api/auth/accept-invite")
@csrf.exempt
@throttle.register_per_address
def api_accept_invite():
    """Spend an invitation for a staff account: answered like a login."""
    user = team.accept_invite(request.get_json(silent=True))
    return jsonify({**tokens.start_session(user), "user": user_view(user)}), 201


@bp.route("/invite/<token>", methods=["GET", "POST"])
@throttle.register_per_address
def accept_invite(token: str):
    """The invitation's page: the invited person chooses their name and password."""
    invitation = team.find_invitation(token)
    if invitation is None:
        return render_template("auth/invite_gone.html"), 404
    form = AcceptInviteForm()
    if request.method == "GET" and invitation.name:
        form.name.data = invitation.name
    if form.validate_on_submit():
        data = {"token": token, "name": form.name.data, "password": form.password.data}
        try:
            user = team.accept_invite(data)
        except ValidationError as exc:
            form.show_errors(exc.fields)
        except (Conflict, NotFound) as exc:
            flash(
                gettext("This invitation can no longer be used. Ask your admin for a new one.")
                if isinstance(exc, NotFound)
                else gettext("That email already has an account. Log in instead."),
                "error",
            )
        except ChatError:
            flash(gettext("Something went wrong on our side. Try again in a moment."), "error")
        else:
            return _log_in_with_cookies(user)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "auth/invite.html", form=form, invitation=invitation, token=token
    ), status


@bp.post("/api/auth/refresh")
@csrf.exempt
@jwt_required(refresh=True, locations=["headers", "cookies"])
def api_refresh():
    """Spend the refresh token for a new pair (rotation): from the Authorization header
    (JSON clients), or from the pages' HttpOnly cookie with the CSRF double-submit header
    that flask-jwt-extended checks, and then the new pair is set as cookies too."""
    pair = tokens.rotate(get_jwt())
    response = jsonify(pair)
    if get_jwt_request_location() == "cookies":
        set_access_cookies(response, pair["access_token"])
        set_refresh_cookies(response, pair["refresh_token"])
    return response


@bp.post("/api/auth/logout")
@csrf.exempt
@jwt_required()
def api_logout():
    """End the token's whole family: its refresh token too, and every socket of it."""
    tokens.end_session(get_jwt())
    return "", 204


# HTML pages: tokens travel in HttpOnly cookies; forms carry CSRF tokens.


def _log_in_with_cookies(user):
    pair = tokens.start_session(user)
    response = redirect(url_for("web.index"))
    set_access_cookies(response, pair["access_token"])
    set_refresh_cookies(response, pair["refresh_token"])
    return response


@bp.route("/login", methods=["GET", "POST"])
@throttle.login_per_address
@throttle.login_per_account
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate({"email": form.email.data, "password": form.password.data})
        except Deactivated:
            flash(gettext("This account has been deactivated. Ask an admin of your team."), "error")
        except Unauthorized:
            flash(gettext("Wrong email or password."), "error")
        except ChatError:
            flash(gettext("Something went wrong on our side. Try again in a moment."), "error")
        else:
            return _log_in_with_cookies(user)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
@throttle.register_per_address
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        data = {"name": form.name.data, "email": form.email.data, "password": form.password.data}
        try:
            user = register_user(data)
        except ValidationError as exc:
            form.show_errors(exc.fields)
        except Conflict:
            form.email.errors.append(gettext("That email is already registered. Log in instead?"))
        except ChatError:
            flash(gettext("Something went wrong on our side. Try again in a moment."), "error")
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
        flash(gettext("You are logged out."), "info")
        return response
    return render_template("auth/logout.html", form=form)


def revoke_cookie_tokens() -> None:
    """End the families of the page's tokens (and so their sockets).

    The form's own CSRF token protects this POST, so the cookies are decoded directly,
    without flask-jwt-extended's double-submit check (the form cannot send its header).
    An expired token still names its family and is revoked; a cookie that is not a
    token of ours has nothing to revoke.
    """
    for name in ("JWT_ACCESS_COOKIE_NAME", "JWT_REFRESH_COOKIE_NAME"):
        encoded = request.cookies.get(current_app.config[name])
        claims = tokens.decode(encoded, allow_expired=True) if encoded else None
        if claims is not None and tokens.claims_are_complete(claims):
            tokens.end_session(claims)
