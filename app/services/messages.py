"""Messages: sending (one transaction, announced after commit) and reading history."""

from __future__ import annotations

from sqlalchemy import select

from ..errors import ValidationError
from ..extensions import db
from ..models import ChatRoom, Message, User
from . import events
from .limits import check_send_rate
from .rooms import ADMIN_VIEW, access_room, ensure_own_room, room_views
from .schemas import History, SendMessage, parse
from .transaction import transaction
from .views import message_view


def send_message(user: User, data: object) -> dict:
    """Store one message and announce it; returns the stored Message object.

    The room's row is locked for the length of the transaction, so sends to a room
    commit one at a time and ids grow in commit order. A retried `client_id` returns
    the message already stored and announces nothing.
    """
    check_send_rate(user.id)
    form = parse(SendMessage, data)
    if user.is_admin and form.room_id is None:
        raise ValidationError("room_id: an admin must name the room")
    with transaction() as session:
        room, created = _target_room(session, user, form.room_id)
        if form.client_id is not None:
            stored = _find_by_client_id(user, form.client_id)
            if stored is not None:
                return message_view(stored)
        message = Message(room_id=room.id, author=user, body=form.body, client_id=form.client_id)
        session.add(message)
        session.flush()
        room.last_activity_at = message.created_at
        if not user.is_admin and room.status == "resolved":
            room.status = "open"  # a customer's reply reopens the conversation
        session.flush()
        payload = message_view(message)
        admin_room = room_views(ADMIN_VIEW, [room])[0]
        customer_id = room.customer_id
    if created:
        events.room_created(admin_room)
    events.message_sent(payload, customer_id, admin_room)
    return payload


def _target_room(session, user: User, room_id: int | None) -> tuple[ChatRoom, bool]:
    if room_id is None:  # a customer writing to their own room, made on first need
        room, created = ensure_own_room(session, user)
        return access_room(user, room.id, lock=True), created
    return access_room(user, room_id, lock=True), False


def _find_by_client_id(user: User, client_id: str) -> Message | None:
    query = select(Message).where(Message.author_id == user.id, Message.client_id == client_id)
    return db.session.scalar(query)


def list_history(user: User, data: object) -> tuple[list[dict], bool]:
    """A page of a room's messages, oldest first, and whether more lie beyond it.

    With `after_id` the page starts just after it and `has_more` says newer messages
    remain; otherwise the page ends just before `before_id` (or at the newest message)
    and `has_more` says older ones remain.
    """
    form = parse(History, data)
    access_room(user, form.room_id)
    query = select(Message).where(Message.room_id == form.room_id)
    if form.before_id is not None:
        query = query.where(Message.id < form.before_id)
    if form.after_id is not None:
        query = query.where(Message.id > form.after_id).order_by(Message.id.asc())
    else:
        query = query.order_by(Message.id.desc())
    rows = list(db.session.scalars(query.limit(form.limit + 1)))
    has_more = len(rows) > form.limit
    rows = rows[: form.limit]
    if form.after_id is None:
        rows.reverse()
    return [message_view(m) for m in rows], has_more
