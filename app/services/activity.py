"""Activity in a room besides sending: read marks and typing."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import and_, false, func, or_, select, update

from ..database import on_postgres, transaction
from ..errors import NotFound
from ..extensions import db
from ..models import ChatRoom, Message, User
from ..registry import current_registry
from . import events
from .access import access_room, visible_to
from .inbox import admin_view_of_own_room, summary_query
from .payloads import read_view, room_row_view, typing_view
from .schemas import MarkRead, Typing, parse


def mark_read(user: User, data: object) -> None:
    """Move the caller's side's read mark up to `message_id` (never backwards).

    The mark is shared by all admins; the customer has their own. The other side hears
    `read` and the admins' inbox row is redrawn, only when the mark actually moved.
    One statement on PostgreSQL: the UPDATE (which also recounts the side's unread
    messages after the new mark) and the admins' summary of the room, joined.
    """
    form = parse(MarkRead, data)
    with transaction() as session:
        move = _move_mark(user, form)
        if on_postgres():
            admin_room = _moved_room_view(session, move.cte("moved"))
        else:
            moved = session.execute(move).one_or_none()
            admin_room = admin_view_of_own_room(moved.customer_id) if moved else None
        if admin_room is None:
            _check_mark_target(user, form)  # not_found, or the mark was already there
            return
    events.read(
        read_view(form.room_id, user, form.message_id), admin_room["customer"]["id"], user.is_staff
    )
    events.room_changed(admin_room)


def _move_mark(user: User, form: MarkRead):
    mark, unread = (
        (ChatRoom.admin_read_id, ChatRoom.admin_unread)
        if user.is_staff
        else (ChatRoom.customer_read_id, ChatRoom.customer_unread)
    )
    # The side's unread count: the other side's messages after the new mark.
    from_other_side = (
        Message.author_id == ChatRoom.customer_id
        if user.is_staff
        else and_(Message.author_id != ChatRoom.customer_id, Message.internal.is_(false()))
    )
    still_unread = (
        select(func.count())
        .select_from(Message)
        .where(Message.room_id == ChatRoom.id, from_other_side, Message.id > form.message_id)
        .scalar_subquery()
    )
    in_room = select(Message.id).where(*_markable(user, form.message_id, form.room_id)).exists()
    return (
        update(ChatRoom)
        .where(
            ChatRoom.id == form.room_id,
            *visible_to(user),
            or_(mark.is_(None), mark < form.message_id),
            in_room,
        )
        .values({mark: form.message_id, unread: still_unread})
        .returning(
            ChatRoom.id,
            ChatRoom.customer_id,
            ChatRoom.status,
            ChatRoom.created_at,
            ChatRoom.last_message_id,
            ChatRoom.admin_unread,
            ChatRoom.customer_read_id,
            ChatRoom.assignee_id,
        )
        .execution_options(synchronize_session=False)
    )


def _markable(user: User, message_id: int, room_id: int) -> list:
    """The message a read mark may move to: one in the room that the user may see (a
    customer's mark never names an internal note)."""
    conditions = [Message.id == message_id, Message.room_id == room_id]
    if not user.is_staff:
        conditions.append(Message.internal.is_(false()))
    return conditions


def _moved_room_view(session, moved) -> dict | None:
    row = session.execute(summary_query(moved.c)).one_or_none()
    return room_row_view(row) if row is not None else None


def _check_mark_target(user: User, form: MarkRead) -> None:
    """Why a mark did not move: a room or message the user may not see is `not_found`;
    otherwise the mark was already at or past it, which changes nothing."""
    room = access_room(user, form.room_id)
    in_room = select(Message.id).where(*_markable(user, form.message_id, room.id))
    if db.session.scalar(in_room) is None:
        raise NotFound("No such message in this room.")


def typing(user: User, data: object) -> None:
    """Tell the room's other participants that `user` is (or stopped) typing.

    Nothing is stored; the typist's own sockets do not hear it. The gate forwards at
    most one state per user and room a second and drops repeats (limits.TypingGate).
    """
    form = parse(Typing, data)
    room = access_room(user, form.room_id)
    payloads = {state: typing_view(room.id, user, state) for state in (True, False)}
    customer_id, user_id = room.customer_id, user.id
    db.session.rollback()  # release the connection before the emit: nothing to keep
    registry = current_registry()

    def forward(state: bool) -> None:  # now, or later from a background task
        typists = sorted(registry.sids_of(user_id))
        events.typing(payloads[state], customer_id, typists)

    current_app.extensions["chat_typing_gate"].offer((user_id, room.id), form.is_typing, forward)
