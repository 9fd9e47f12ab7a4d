"""The widget on a business's own site: the identity exchange (and, later, its pages).

`POST /api/widget/session {"site_key", "identity"}` answers like `POST /api/auth/login`
for the site's customer the signed identity names (services/sites.py), or 401
`unauthorized` with nothing created.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..auth import throttle
from ..extensions import csrf
from ..services import tokens
from ..services.payloads import user_view
from ..services.sites import exchange_identity

bp = Blueprint("widget", __name__)


@bp.post("/api/widget/session")
@csrf.exempt  # no cookie of ours is read: the identity is the credential
@throttle.widget_per_address
def session():
    user = exchange_identity(request.get_json(silent=True))
    return jsonify({**tokens.start_session(user), "user": user_view(user)})
