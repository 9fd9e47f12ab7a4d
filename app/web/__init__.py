"""HTML pages: `/` sends each role to its page; `/chat` for customers, `/admin` for admins."""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response, redirect, render_template, url_for
from flask_jwt_extended import (
    create_access_token,
    get_jwt,
    set_access_cookies,
    verify_jwt_in_request,
)
from sqlalchemy import text

from ..auth.forms import LogoutForm
from ..auth.tokens import user_from_claims
from ..extensions import db
from ..models import User
from ..services.views import user_view

bp = Blueprint("web", __name__)

# Pages load only their own scripts, styles and socket: an injected script has nowhere
# to run from and nowhere to send what it finds.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@bp.after_app_request
def security_headers(response):
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def page_user() -> tuple[User | None, str | None]:
    """The user of the page's cookies, and a fresh access token when the old one had
    expired but the refresh cookie is still good (the page then stays logged in)."""
    try:
        if verify_jwt_in_request(optional=True, locations=["cookies"]):
            return user_from_claims(get_jwt()), None
    except Exception:  # expired or damaged access cookie: try the refresh cookie
        pass
    try:
        if verify_jwt_in_request(optional=True, refresh=True, locations=["cookies"]):
            user = user_from_claims(get_jwt())
            if user is not None:
                token = create_access_token(str(user.id), additional_claims={"role": user.role})
                return user, token
    except Exception:
        pass
    return None, None


def render_page(template: str, role: str):
    user, new_token = page_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if user.role != role:
        return redirect(url_for("web.index"))
    page = render_template(template, user=user_view(user), logout_form=LogoutForm())
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"  # private conversations: never cached
    if new_token:
        set_access_cookies(response, new_token)
    return response


@bp.get("/")
def index():
    user, _ = page_user()
    if user is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for("web.admin" if user.is_admin else "web.chat"))


@bp.get("/chat")
def chat():
    return render_page("web/chat.html", "customer")


@bp.get("/admin")
def admin():
    return render_page("web/admin.html", "admin")


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        return jsonify({"status": "unavailable"}), 503
    return jsonify({"status": "ok"})
