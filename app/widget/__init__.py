"""The widget on a business's own site (issue 20; docs/PROTOCOL.md, "The widget").

- `GET /widget.js`: the loader the site's pages carry. It draws the launcher and, when
  the visitor opens the chat, frames `/widget/frame`.
- `GET /widget/frame?site=KEY`: the conversation panel. Only the site's registered
  origins may frame it (`Content-Security-Policy: frame-ancestors`), and it takes
  messages only from the page that framed it, when that page is of one of them.
- `POST /api/widget/session {"site_key", "identity"}` answers like `POST
  /api/auth/login` for the site's customer the signed identity names
  (services/sites.py), or 401 `unauthorized` with nothing created.

No cookie of ours is read or set by any of them: browsers that block third-party
cookies (inside the business's page, ours are third-party) work the same.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
)
from flask_babel import force_locale, gettext

from ..auth import throttle
from ..extensions import csrf
from ..i18n import LANGUAGES
from ..services import tokens
from ..services.payloads import user_view
from ..services.sites import active_site, exchange_identity, unread_for_identity

bp = Blueprint("widget", __name__)


def frame_policy(origins: list[str]) -> str:
    """The frame's own Content-Security-Policy: the pages' rules, framed only by `origins`."""
    ancestors = " ".join(origins) or "'none'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"connect-src 'self'; frame-ancestors {ancestors}; base-uri 'none'; "
        "form-action 'self'"
    )


LOADER_MESSAGES = (
    "Chat with support",
    "Chat with support, %(count)s unread",
    "Support chat",
)


@bp.get("/widget.js")
def loader():
    """The loader, with its few strings in every language (the page's language is the
    site's `data-locale`, else the visitor's browser's)."""
    catalogs = {}
    for language in LANGUAGES:
        with force_locale(language):
            catalogs[language] = {m: gettext(m) for m in LOADER_MESSAGES}
    response = current_app.make_response(render_template("widget/loader.js", catalogs=catalogs))
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/widget/frame")
def frame():
    site = active_site(request.args.get("site"))
    if site is None:
        abort(404)
    page = render_template(
        "widget/frame.html",
        site={"name": site.name, "key": site.key, "login_url": site.login_url},
        origins=site.origin_list,
    )
    response = current_app.make_response(page)
    response.headers["Content-Security-Policy"] = frame_policy(site.origin_list)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/widget/session")
@csrf.exempt  # no cookie of ours is read: the identity is the credential
@throttle.widget_per_address
def session():
    user = exchange_identity(request.get_json(silent=True))
    return jsonify({**tokens.start_session(user), "user": user_view(user)})


@bp.post("/api/widget/unread")
@csrf.exempt  # no cookie of ours is read: the identity is the credential
@throttle.widget_per_address
def unread():
    """How many replies wait for the identity's customer: the loader asks on each page
    view, and loads the panel only when one does. A simple cross-origin request (its
    body is sent as text/plain, so no preflight), answered only to the site's origins."""
    site, count = unread_for_identity(request.get_json(force=True, silent=True))
    response = jsonify({"unread": count})
    origin = request.headers.get("Origin")
    if origin in site.origin_list:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    return response
