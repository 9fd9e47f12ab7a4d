"""The inbox: listing rooms a page at a time, the cursors between pages, and the Room
summaries each side sees. Everything here only reads."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, bindparam, func, or_, select, union
from sqlalchemy.orm import aliased

from ..errors import ValidationError
from ..extensions import db
from ..models import ChatRoom, Message, User
from ..registry import current_registry
from . import search
from .access import visible_to
from .attachments import views_for
from .payloads import room_row_view, room_view
from .schemas import MAX_ID, ListRooms, parse

Side = Literal["admin", "customer"]


def side_of(user: User) -> Side:
    return "admin" if user.is_staff else "customer"


def room_summaries(side: Side, rooms: list[ChatRoom]) -> list[dict]:
    """Rooms as the contract's Room objects, as one side sees them (the side decides
    which unread counter shows): the counters on the room rows, and one query for the
    last messages."""
    if not rooms:
        return []
    last_ids = [room.last_message_id for room in rooms if room.last_message_id]
    last = {}
    if last_ids:
        last = {
            m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(last_ids)))
        }
    online = current_registry().online([room.customer_id for room in rooms])
    with_files = [m.id for m in last.values() if m.attachment_count]
    files = views_for(with_files) if with_files else {}  # a statement only when needed
    return [
        room_view(
            room,
            last.get(room.last_message_id),
            files.get(room.last_message_id),
            room.admin_unread if side == "admin" else room.customer_unread,
            room.customer_id in online,
            # what the other side has read: the receipt a side shows under its messages
            room.customer_read_id if side == "admin" else room.admin_read_id,
            for_staff=side == "admin",
        )
        for room in rooms
    ]


def room_summary(side: Side, room: ChatRoom) -> dict:
    return room_summaries(side, [room])[0]


def encode_cursor(room: ChatRoom) -> str:
    raw = f"{room.last_activity_at.replace(tzinfo=None).isoformat()}|{room.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a `before` cursor names. Cursors are not secret, only opaque: a
    forged one may point anywhere, but only at values the database can compare."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, room_id = raw.partition("|")
        position = datetime.fromisoformat(when), int(room_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        position = None
    if position is None or position[0].tzinfo is not None or not 1 <= position[1] <= MAX_ID:
        raise ValidationError("before: not a cursor this server gave out")
    return position


def listed_for(user: User) -> list:
    """The rooms the inbox lists: a customer's own room (even before its first message),
    and for the team every room with a message. A room nobody has written in is not
    work: it stays out of the team's list and counts until its first message."""
    if user.is_staff:
        return [ChatRoom.last_message_id.is_not(None)]
    return visible_to(user)


def query_rooms(user: User, form: ListRooms) -> tuple[list[ChatRoom], str | None]:
    """A page of the rooms `user` may see, most recent activity first."""
    query = select(ChatRoom).where(*listed_for(user))
    if user.is_staff and form.view == "mine":
        query = query.where(ChatRoom.assignee_id == user.id)
    elif user.is_staff and form.view == "unassigned":
        query = query.where(ChatRoom.assignee_id.is_(None))
    if form.status:
        query = query.where(ChatRoom.status == form.status)
    if form.unread:
        query = query.where(_unread_column(user) > 0)
    if form.q and form.q.strip():
        found = list(db.session.scalars(_searched_rooms(user, form.q)))
        if not found:
            return [], None
        query = query.where(ChatRoom.id.in_(found))
    if form.before:
        when, room_id = decode_cursor(form.before)
        query = query.where(
            or_(
                ChatRoom.last_activity_at < when,
                and_(ChatRoom.last_activity_at == when, ChatRoom.id < room_id),
            )
        )
    query = query.order_by(ChatRoom.last_activity_at.desc(), ChatRoom.id.desc())
    rooms = list(db.session.scalars(query.limit(form.limit + 1)))
    next_cursor = encode_cursor(rooms[form.limit - 1]) if len(rooms) > form.limit else None
    return rooms[: form.limit], next_cursor


def _searched_rooms(user: User, q: str):
    """The ids of the rooms `user` may see that `q` finds: by their customer's name or
    email, or by their messages' text, each through its own index.

    A statement of its own, so the page's query gets the ids as a list: PostgreSQL
    cannot estimate a prefix search's matches, and guessing thousands it would join
    every room and customer even when one message matched."""
    pattern = search.like_anywhere(q.strip().lower())
    by_customer = (
        select(ChatRoom.id)
        .join(ChatRoom.customer)
        .where(
            *visible_to(user),
            or_(
                User.name.ilike(pattern, escape="\\"),  # both served by trigram indexes
                User.email.like(pattern, escape="\\"),
            ),
        )
    )
    terms = search.words(q)
    if not terms:
        return by_customer
    by_text = search.rooms_matching(terms, with_notes=user.is_staff)
    if not user.is_staff:
        by_text = by_text.join(ChatRoom, ChatRoom.id == Message.room_id).where(*visible_to(user))
    return union(by_customer, by_text)


def _unread_column(user: User):
    return ChatRoom.admin_unread if user.is_staff else ChatRoom.customer_unread


def inbox_counts(user: User, data: object = None) -> dict:
    """How many of the rooms `user` may see are in each of the inbox's filters (All,
    Open, Resolved, Unread), in one statement over the room rows' own counters.

    For the team, the filters count within a view (`view`: mine, unassigned, all), and
    `views` counts the open conversations of each view."""
    view = parse(ListRooms, data).view if isinstance(data, dict) else "all"
    unread = _unread_column(user)
    columns = [
        func.count(),
        func.count().filter(ChatRoom.status == "open"),
        func.count().filter(ChatRoom.status == "resolved"),
        func.count().filter(unread > 0),
    ]
    in_view = {
        "mine": ChatRoom.assignee_id == user.id,
        "unassigned": ChatRoom.assignee_id.is_(None),
    }
    if not user.is_staff:
        row = db.session.execute(select(*columns).where(*listed_for(user))).one()
        return dict(zip(("all", "open", "resolved", "unread"), row, strict=True))
    chosen = in_view.get(view)
    if chosen is not None:
        columns = [column.filter(chosen) for column in columns[:1]] + [
            func.count().filter(chosen, ChatRoom.status == "open"),
            func.count().filter(chosen, ChatRoom.status == "resolved"),
            func.count().filter(chosen, unread > 0),
        ]
    is_open = ChatRoom.status == "open"
    row = db.session.execute(
        select(
            *columns,
            func.count().filter(is_open, in_view["mine"]),
            func.count().filter(is_open, in_view["unassigned"]),
            func.count().filter(is_open),
        ).where(*listed_for(user))
    ).one()
    counts = dict(zip(("all", "open", "resolved", "unread"), row[:4], strict=True))
    counts["views"] = dict(zip(("mine", "unassigned", "all"), row[4:], strict=True))
    return counts


def list_rooms(user: User, data: object) -> tuple[list[dict], str | None]:
    """The caller's rooms, most recent activity first: every room for an admin, their
    own for a customer (none until their room exists: see rooms.open_own_room)."""
    form = parse(ListRooms, data)
    rooms, next_cursor = query_rooms(user, form)
    summaries = room_summaries(side_of(user), rooms)
    if form.q and form.q.strip():  # what matched in each room's messages, if anything
        terms = search.words(form.q)
        found = search.matches([room.id for room in rooms], terms, with_notes=user.is_staff)
        for summary in summaries:
            summary["match"] = found.get(summary["id"])
    return summaries, next_cursor


# Made once: a fresh alias per call would miss SQLAlchemy's statement cache every time.
CUSTOMER, AUTHOR = aliased(User, name="customer"), aliased(User, name="author")
ASSIGNEE = aliased(User, name="assignee")


def summary_query(room):
    """The columns `payloads.room_row_view` reads, for a room source with ChatRoom's
    columns (the table itself, or a CTE of rows an UPDATE returned): the room, its
    customer and its last message with its author, joined. The hot paths' summary, for
    the admins' side."""
    return (
        select(
            room.id,
            room.customer_id,
            room.status,
            room.created_at,
            room.admin_unread,
            room.customer_read_id,
            CUSTOMER.name,
            CUSTOMER.email,
            Message.id,
            Message.body,
            Message.client_id,
            Message.created_at,
            AUTHOR.id,
            AUTHOR.name,
            AUTHOR.role,
            Message.attachment_count,
            room.assignee_id,
            ASSIGNEE.name,
        )
        .join(CUSTOMER, CUSTOMER.id == room.customer_id)
        .outerjoin(Message, Message.id == room.last_message_id)
        .outerjoin(AUTHOR, AUTHOR.id == Message.author_id)
        .outerjoin(ASSIGNEE, ASSIGNEE.id == room.assignee_id)
    )


OWN_ROOM_SUMMARY = summary_query(ChatRoom).where(ChatRoom.customer_id == bindparam("customer"))
ROOM_SUMMARY = summary_query(ChatRoom).where(ChatRoom.id == bindparam("room"))


def admin_view_of_room(room_id: int) -> dict | None:
    """The admins' Room by its id, in one query built once (automatic assignment
    announces each room it gives with it)."""
    row = db.session.connection().execute(ROOM_SUMMARY, {"room": room_id}).one_or_none()
    return room_row_view(row) if row is not None else None


def admin_view_of_own_room(customer_id: int) -> dict | None:
    """The admins' Room of one customer (None if they have none), in one query.

    Run at every customer's connect and disconnect (presence): a statement built once,
    on the session's Core connection (no ORM execution, no cache-key walk per call)."""
    row = db.session.connection().execute(OWN_ROOM_SUMMARY, {"customer": customer_id}).one_or_none()
    return room_row_view(row) if row is not None else None
