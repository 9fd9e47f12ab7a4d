"""Every event the server emits, and who hears it: the only module that emits.

Callers pass payloads already built from the allow-listed views, and call these only
after the transaction that stored what they announce has committed.
"""

from __future__ import annotations

from ..extensions import socketio

NAMESPACE = "/chat"
ADMINS = "admins"


def user_channel(user_id: int) -> str:
    """The Socket.IO room holding every socket of one user."""
    return f"user:{user_id}"


def room_audience(customer_id: int) -> list[str]:
    """Everyone who hears about a customer's room: their sockets and every admin's."""
    return [user_channel(customer_id), ADMINS]


def _emit(event: str, payload: dict, to, skip_sid: str | None = None) -> None:
    socketio.emit(event, payload, to=to, namespace=NAMESPACE, skip_sid=skip_sid)


def message_sent(message: dict, customer_id: int, admin_room: dict) -> None:
    """A message was stored: its room's audience hears it; admins see the room move."""
    _emit("new_message", message, room_audience(customer_id))
    _emit("room_updated", admin_room, ADMINS)


def room_created(admin_room: dict) -> None:
    _emit("room_created", admin_room, ADMINS)
