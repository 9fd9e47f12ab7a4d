"""The demo shop (development only): a business's site with the widget on it, to try the
whole flow in a minute (`make run` prints its address).

It is served by this same process at http://localhost:PORT/demo-shop while the chat
is http://127.0.0.1:PORT: two origins, so the widget is framed across sites as on a
real shop. Its "login" picks one of the demo customers; its "backend" (this module)
signs their identity with the demo site's secret, as a shop's backend would.
"""

from __future__ import annotations

import time

import jwt
from flask import Blueprint, abort, current_app, make_response, render_template, request
from sqlalchemy import select

from ..database import transaction
from ..extensions import db
from ..models import Site

bp = Blueprint("demo_shop", __name__)
DEMO_SITE_NAME = "Teapot Shop (demo)"
SHOPPERS = {  # the shop's own user ids for the demo customers
    "carl": ("shop-carl", "carl@example.com", "Carl Customer"),
    "cleo": ("shop-cleo", "cleo@example.com", "Cleo Customer"),
    "minji": ("shop-minji", "minji@example.com", "김민지"),
}


def shop_origin() -> str:
    return f"http://localhost:{current_app.config['PORT']}"


def chat_origin() -> str:
    return f"http://127.0.0.1:{current_app.config['PORT']}"


def demo_shop_site() -> Site:
    """The demo shop's site, registered once for this PORT."""
    from ..services.sites import add_site

    site = db.session.scalar(
        select(Site).where(Site.name == DEMO_SITE_NAME, Site.removed_at.is_(None))
    )
    if site is not None and shop_origin() in site.origin_list:
        return site
    if site is not None:  # another port than last time
        with transaction():
            site.origins = shop_origin()
        return site
    site, _secret = add_site(DEMO_SITE_NAME, [shop_origin()])
    return site


@bp.get("/demo-shop")
def shop():
    if current_app.config["ENV_NAME"] != "development":
        abort(404)
    if request.host.split(":")[0] != "localhost":
        # The shop is another site than the chat: open it on its own origin.
        return make_response(
            f'<p>Open the demo shop at <a href="{shop_origin()}/demo-shop">'
            f"{shop_origin()}/demo-shop</a>, its own origin.</p>",
            200,
        )
    site = demo_shop_site()
    who = request.args.get("as")
    identity = None
    if who in SHOPPERS:
        sub, email, name = SHOPPERS[who]
        claims = {"sub": sub, "email": email, "name": name, "exp": int(time.time()) + 3600}
        identity = jwt.encode(claims, site.secret, algorithm="HS256")
    page = render_template(
        "widget/demo_shop.html",
        site_key=site.key,
        identity=identity,
        shopper=SHOPPERS.get(who),
        shoppers=SHOPPERS,
        chat_origin=chat_origin(),
    )
    response = make_response(page)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {chat_origin()}; style-src 'self' "
        f"'unsafe-inline'; frame-src {chat_origin()}; img-src 'self' data:; base-uri 'none'"
    )
    return response
