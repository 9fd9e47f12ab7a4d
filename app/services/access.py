"""Who may see which room: the one rule, used by every query that touches a room."""

from __future__ import annotations

from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..models import ChatRoom, User


def visible_to(user: User) -> list:
    """The rule as query conditions: an admin sees every room, a customer only their own."""
    return [] if user.is_staff else [ChatRoom.customer_id == user.id]


def access_room(user: User, room_id: int, *, lock: bool = False) -> ChatRoom:
    """The room `room_id` if `user` may see it, else `not_found` (never a hint it exists).

    With `lock`, the room's row is locked until the transaction ends: changes to one
    room then commit one after another.
    """
    query = select(ChatRoom).where(ChatRoom.id == room_id, *visible_to(user))
    if lock:
        query = query.with_for_update(of=ChatRoom)
    room = db.session.scalar(query)
    if room is None:
        raise NotFound("No such room.")
    return room
