"""The JSON API under /api: thin views over the same services the sockets use."""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, request
from flask_jwt_extended import current_user, jwt_required

from ..extensions import csrf
from ..services import team
from ..services.inbox import list_rooms
from ..services.messages import list_history
from ..services.payloads import user_view

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # bearer tokens; cookie use is guarded by flask-jwt-extended's double submit


def query_args(*int_names: str) -> dict:
    """The query string as a payload: whole numbers become ints, the rest stays text,
    so `limit=abc` reaches the schema as text and is answered `validation_error`."""
    args = {}
    for key, value in request.args.items():
        if key in int_names and re.fullmatch(r"-?\d{1,12}", value):
            args[key] = int(value)
        else:
            args[key] = value
    return args


@bp.get("/me")
@jwt_required()
def me():
    return jsonify({"user": user_view(current_user)})


@bp.get("/rooms")
@jwt_required()
def rooms():
    args = query_args("limit")
    if "unread" in args:  # ?unread=true / false, as the socket's boolean
        args["unread"] = {"true": True, "false": False}.get(args["unread"], args["unread"])
    found, next_cursor = list_rooms(current_user, args)
    return jsonify({"rooms": found, "next": next_cursor})


@bp.get("/rooms/<int:room_id>/messages")
@jwt_required()
def messages(room_id: int):
    payload = {**query_args("limit", "before_id", "after_id"), "room_id": room_id}
    found, has_more, lines = list_history(current_user, payload)
    page = {"messages": found, "has_more": has_more}
    if current_user.is_staff:  # the thread's status lines are the team's alone
        page["events"] = lines
    return jsonify(page)


@bp.get("/staff")
@jwt_required()
def staff():
    """The team, for its admins."""
    team.only_admins(current_user)
    return jsonify({"staff": team.list_staff(current_user)})


@bp.post("/staff/invitations")
@jwt_required()
def invite():
    return jsonify(team.invite(current_user, request.get_json(silent=True))), 201


@bp.patch("/staff/<int:member_id>")
@jwt_required()
def change_member(member_id: int):
    return jsonify(
        {"member": team.change_member(current_user, member_id, request.get_json(silent=True))}
    )
