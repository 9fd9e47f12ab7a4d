"""HTML pages: `/` sends each role to its page; `/chat` for customers, `/admin` for admins."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_jwt_extended import set_access_cookies, set_refresh_cookies
from sqlalchemy import text

from ..auth.forms import LogoutForm
from ..errors import Unauthorized
from ..extensions import db
from ..models import User
from ..services import tokens
from ..services.payloads import user_view

bp = Blueprint("web", __name__)


@bp.app_context_processor
def chat_limits() -> dict:
    """The server's own limits, for the pages' composer (counted in code points, as the
    server counts them; a textarea's maxlength would count UTF-16 units)."""
    from ..services.schemas import MAX_BODY

    return {"max_body": MAX_BODY}


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
        # Older browsers' twin of frame-ancestors 'none'. The widget's frame sets its
        # own policy naming its site's origins, which X-Frame-Options cannot express.
        if "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]:
            response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/api"):  # tokens and private conversations
        response.headers["Cache-Control"] = "no-store"
    if current_app.config["HSTS"]:
        response.headers.setdefault("Strict-Transport-Security", current_app.config["HSTS"])
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def page_user() -> tuple[User | None, dict | None]:
    """The user of the page's cookies, and a new token pair when the access cookie had
    ended but the refresh cookie is still good (the refresh token is then rotated, as
    on `POST /api/auth/refresh`, and the page stays logged in)."""
    access = _cookie_claims("JWT_ACCESS_COOKIE_NAME")
    if access is not None:
        try:
            return tokens.check_claims(access), None
        except Unauthorized:
            pass
    refresh = _cookie_claims("JWT_REFRESH_COOKIE_NAME")
    if refresh is not None:
        try:
            pair = tokens.rotate(refresh)
            return tokens.check_claims(tokens.decode(pair["access_token"])), pair
        except Unauthorized:
            pass
    return None, None


def _cookie_claims(config_name: str) -> dict | None:
    encoded = request.cookies.get(current_app.config[config_name])
    return tokens.decode(encoded) if encoded else None


def render_page(template: str, side: str):
    """A page for one side: "customer", or "staff" (admins and agents)."""
    user, new_pair = page_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if ("staff" if user.is_staff else "customer") != side:
        response = redirect(url_for("web.index"))
    else:
        page = render_template(
            template, user=user_view(user), account=user, logout_form=LogoutForm()
        )
        response = make_response(page)
        response.headers["Cache-Control"] = "no-store"  # private conversations
    return with_new_pair(response, new_pair)


def with_new_pair(response, pair: dict | None):
    """Hand the browser the rotated pair: its old refresh token is spent now."""
    if pair:
        set_access_cookies(response, pair["access_token"])
        set_refresh_cookies(response, pair["refresh_token"])
    return response


@bp.get("/")
def index():
    user, new_pair = page_user()
    if user is None:
        return redirect(url_for("auth.login"))
    return with_new_pair(redirect(url_for("web.admin" if user.is_staff else "web.chat")), new_pair)


@bp.get("/chat")
def chat():
    return render_page("web/chat.html", "customer")


@bp.get("/admin")
def admin():
    return render_page("web/admin.html", "staff")


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        return jsonify({"status": "unavailable"}), 503
    return jsonify({"status": "ok"})
