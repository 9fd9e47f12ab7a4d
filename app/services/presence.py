"""Who is online: sockets arriving and leaving, and who is told about it.

Admins hear a customer come online with their first socket and go offline with their
last; customers hear whether any admin is online (on connect, and whenever the first
admin arrives or the last one leaves).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import update

from ..extensions import db
from ..models import User, utcnow
from ..registry import Change, Connection, Identity, current_registry
from . import events
from .inbox import admin_view_of_own_room


def socket_opened(user: Identity, conn: Connection) -> None:
    """Remember the socket and announce what it changed; `TooManySockets` past the
    configured number of sockets per user (nothing is remembered or announced then)."""
    registry = current_registry()
    change = registry.add(conn, limit=current_app.config["CHAT_MAX_SOCKETS_PER_USER"])
    if user.is_staff:
        if change.role:
            events.admins_presence(True)
        if change.user:  # a member with room may take waiting conversations now
            from .assignment import assign_if_waiting
            from .team import announce

            announce(user.id)
            assign_if_waiting()
        return
    events.admins_presence(registry.any_online("admin"), to=conn.sid)
    if change.user:
        _announce_customer(user.id, online=True)


def announce_arrival(conn: Connection, change: Change) -> None:
    """Tell who must know that a socket's user (or role) is online again (its process
    came back after a stall and registered its sockets anew)."""
    _announce(conn, change, online=True)


def socket_closed(sid: str) -> None:
    conn, change = current_registry().remove(sid)
    if conn is not None:
        announce_departure(conn, change)


def announce_departure(conn: Connection, change: Change) -> None:
    """Tell who must know that a socket is gone (closed, or its process died)."""
    _announce(conn, change, online=False)


def _announce(conn: Connection, change: Change, online: bool) -> None:
    if conn.role == "admin":
        if change.role:
            events.admins_presence(online)
        if change.user and not online:
            from .assignment import schedule_release
            from .team import announce

            announce(conn.user_id)
            schedule_release(conn.user_id)
    elif change.user:
        _announce_customer(conn.user_id, online=online)


def _announce_customer(user_id: int, online: bool) -> None:
    if not online:  # the agents' customer panel says when they were last here
        db.session.execute(update(User).where(User.id == user_id).values(last_seen_at=utcnow()))
        db.session.commit()
    events.customer_presence(user_id, online)
    room = admin_view_of_own_room(user_id)
    if room is not None:
        events.room_changed(room)
        if not online:  # replies they have not seen may now be emailed
            from .notify import customer_left

            try:
                customer_left(room["id"])
            except Exception:  # the sweep finds it instead
                current_app.logger.exception("no email check queued for room %s", room["id"])
