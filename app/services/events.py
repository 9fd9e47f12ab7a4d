"""Every event the server emits, and who hears it: the only module that emits.

Callers pass payloads already built from the allow-listed builders in `payloads.py`, and
call these only after the transaction that stored what they announce has committed.

Socket.IO rooms: `user:<id>` holds every socket of one user, `admins` every admin
socket, `customers` every customer socket.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext

from ..extensions import socketio

NAMESPACE = "/chat"
ADMINS = "admins"
CUSTOMERS = "customers"


def user_channel(user_id: int) -> str:
    """The Socket.IO room holding every socket of one user."""
    return f"user:{user_id}"


def room_audience(customer_id: int) -> list[str]:
    """Everyone who hears about a customer's room: their sockets and every admin's."""
    return [user_channel(customer_id), ADMINS]


# With Redis (REDIS_URL), each emit is a publish that holds one of the pool's connections
# for a round trip. redis-py refuses a command at once when they are all in use, so past
# capacity (a thousand sockets closing together, a flood of acks) emits would be lost:
# instead they take turns, at most as many at once as the pool has connections.
_publishing = nullcontext()


def publish_in_turns(connections: int | None) -> None:
    """Let at most `connections` emits publish at once (the Redis pool's size); None:
    no bound (one process, no Redis). Set by `create_app`, like the socketio object's
    own message queue, for the whole process."""
    global _publishing
    _publishing = threading.BoundedSemaphore(connections) if connections else nullcontext()


def _emit(event: str, payload: dict, to, skip_sid=None) -> None:
    with _publishing:
        socketio.emit(event, payload, to=to, namespace=NAMESPACE, skip_sid=skip_sid)


def message_sent(message: dict, customer_id: int, admin_room: dict) -> None:
    """A message was stored: its room's audience hears it; admins see the room move."""
    _emit("new_message", message, room_audience(customer_id))
    _emit("room_updated", admin_room, ADMINS)


def note_added(note: dict) -> None:
    """An internal note was stored: only admin sockets hear it, never the customer's."""
    _emit("new_message", note, ADMINS)


def canned_replies(replies: list[dict]) -> None:
    """The team's saved replies changed: every admin socket gets the whole list."""
    _emit("canned_replies", {"replies": replies}, ADMINS)


def assigned(admin_room: dict, line: dict) -> None:
    """A room's assignee changed: the team's inbox row, and the thread's line for it.
    Customers never hear who on the team has them."""
    _emit("room_updated", admin_room, ADMINS)
    _emit("room_event", line, ADMINS)


def room_line(line: dict) -> None:
    """A line in a thread that changes nothing else (a reply over someone's
    assignment): the team's alone."""
    _emit("room_event", line, ADMINS)


def viewing(room_id: int, viewer: dict, on: bool) -> None:
    """A member opened (or left) a conversation: the team alone hears it."""
    _emit("viewing", {"room_id": room_id, "user": viewer, "viewing": on}, ADMINS)


def staff_changed(member: dict) -> None:
    """A member of the team joined, changed role or capacity, was deactivated, or says
    they are available or away: every staff socket (never a customer's)."""
    _emit("staff_updated", member, ADMINS)


def room_created(admin_room: dict) -> None:
    _emit("room_created", admin_room, ADMINS)


def room_changed(admin_room: dict) -> None:
    """A room's read mark or presence changed: the admins' inbox row is redrawn."""
    _emit("room_updated", admin_room, ADMINS)


def status_changed(
    admin_room: dict, customer_room: dict, customer_id: int, line: dict | None = None
) -> None:
    """A room was opened or resolved: both sides hear it, each with its own view, and
    the team gets the thread's line for it (`room_event`)."""
    _emit("room_updated", admin_room, ADMINS)
    _emit("room_updated", customer_room, user_channel(customer_id))
    if line is not None:
        _emit("room_event", line, ADMINS)


def typing(payload: dict, customer_id: int, typist_sids: list[str]) -> None:
    """Everyone in the room hears it except the typist's own sockets."""
    _emit("typing", payload, room_audience(customer_id), skip_sid=typist_sids or None)


def read(payload: dict, customer_id: int, by_admin: bool) -> None:
    """A read mark moved: the room's other side hears it."""
    _emit("read", payload, user_channel(customer_id) if by_admin else ADMINS)


def customer_presence(user_id: int, online: bool) -> None:
    _emit("presence", {"user_id": user_id, "online": online}, ADMINS)


def admins_presence(online: bool, to: str = CUSTOMERS) -> None:
    """Whether any admin is online: to every customer socket, or to one socket."""
    _emit("presence", {"admins_online": online}, to)


def customer_room_changed(customer_room: dict, customer_id: int, line: dict) -> None:
    """The customer's own message reopened their resolved room: a status change, and
    the team's thread line for it."""
    _emit("room_updated", customer_room, user_channel(customer_id))
    _emit("room_event", line, ADMINS)


def session_expired(sid: str) -> None:
    """Tell one socket its token has ended, then close it: once, though a logout and
    the housekeeping's look at ended sessions may both find it before it is gone."""
    from flask import current_app

    told = current_app.extensions.setdefault("chat_told_expired", {})
    if sid in told:
        return
    if len(told) > 10_000:
        told.clear()
    told[sid] = True
    _emit("session_expired", {}, sid)
    with _publishing:  # with Redis, a disconnect of another process's socket publishes
        socketio.server.disconnect(sid, namespace=NAMESPACE)
