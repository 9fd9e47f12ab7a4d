"""Rooms: who may see which, the customer's one room, and the inbox listing."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from ..errors import NotFound, ValidationError
from ..extensions import db
from ..models import ChatRoom, Message, User, utcnow
from ..registry import current_registry
from . import events
from .schemas import MAX_ID, ListRooms, parse
from .transaction import on_postgres, transaction
from .views import room_row_view, room_view


def visible_to(user: User) -> list:
    """The one rule of who may see which room, as query conditions: an admin every room,
    a customer only their own."""
    return [] if user.is_admin else [ChatRoom.customer_id == user.id]


def access_room(user: User, room_id: int, *, lock: bool = False) -> ChatRoom:
    """The room `room_id` if `user` may see it, else `not_found` (never a hint it exists).

    With `lock`, the room's row is locked until the transaction ends: sends to one room
    then commit one after another, so message ids grow in commit order.
    """
    query = select(ChatRoom).where(ChatRoom.id == room_id, *visible_to(user))
    if lock:
        query = query.with_for_update(of=ChatRoom)
    room = db.session.scalar(query)
    if room is None:
        raise NotFound("No such room.")
    return room


def get_own_room(user: User) -> ChatRoom | None:
    return db.session.scalar(select(ChatRoom).where(ChatRoom.customer_id == user.id))


def create_own_room(session: Session | Connection, customer_id: int) -> bool:
    """Make the customer's room unless it exists; True when this call made it.

    Racing first messages all insert; the unique constraint on `customer_id` lets one
    win and the others do nothing."""
    dialect = postgresql if on_postgres() else sqlite
    now = utcnow()
    stmt = (
        dialect.insert(ChatRoom)
        .values(customer_id=customer_id, status="open", created_at=now, last_activity_at=now)
        .on_conflict_do_nothing(index_elements=["customer_id"])
        .returning(ChatRoom.id)
    )
    return session.execute(stmt).scalar() is not None


def ensure_own_room(session: Session, user: User) -> tuple[ChatRoom, bool]:
    """The customer's room, created if missing; True when this call created it."""
    room = get_own_room(user)
    if room is not None:
        return room, False
    created = create_own_room(session, user.id)
    room = get_own_room(user)
    if room is None:  # pragma: no cover - the constraint guarantees a row exists
        raise NotFound("No such room.")
    return room, created


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


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def query_rooms(user: User, form: ListRooms) -> tuple[list[ChatRoom], str | None]:
    """A page of the rooms `user` may see, most recent activity first."""
    query = select(ChatRoom).join(ChatRoom.customer).where(*visible_to(user))
    if form.status:
        query = query.where(ChatRoom.status == form.status)
    if form.q and form.q.strip():
        pattern = _like(form.q.strip().lower())
        query = query.where(
            or_(
                func.lower(User.name).like(pattern, escape="\\"),
                User.email.like(pattern, escape="\\"),
            )
        )
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


class _AdminView:
    """Stands for "any admin" when a Room is built for the admins' audience."""

    is_admin = True


ADMIN_VIEW = _AdminView()


def room_views(viewer: User | _AdminView, rooms: list[ChatRoom]) -> list[dict]:
    """Rooms as the contract's Room objects, as `viewer`'s side sees them: the counters
    on the room rows, and one query for the last messages."""
    if not rooms:
        return []
    last_ids = [room.last_message_id for room in rooms if room.last_message_id]
    last = {}
    if last_ids:
        last = {
            m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(last_ids)))
        }
    online = current_registry().online([room.customer_id for room in rooms])
    return [
        room_view(
            room,
            last.get(room.last_message_id),
            room.admin_unread if viewer.is_admin else room.customer_unread,
            room.customer_id in online,
        )
        for room in rooms
    ]


# Made once: a fresh alias per call would miss SQLAlchemy's statement cache every time.
CUSTOMER, AUTHOR = aliased(User, name="customer"), aliased(User, name="author")


def summary_query(room):
    """The columns `views.room_row_view` reads, for a room source with ChatRoom's
    columns (the table itself, or a CTE of rows an UPDATE returned): the room, its
    customer and its last message with its author, joined."""
    return (
        select(
            room.id,
            room.customer_id,
            room.status,
            room.created_at,
            room.admin_unread,
            CUSTOMER.name,
            CUSTOMER.email,
            Message.id,
            Message.body,
            Message.client_id,
            Message.created_at,
            AUTHOR.id,
            AUTHOR.name,
            AUTHOR.role,
        )
        .join(CUSTOMER, CUSTOMER.id == room.customer_id)
        .outerjoin(Message, Message.id == room.last_message_id)
        .outerjoin(AUTHOR, AUTHOR.id == Message.author_id)
    )


def admin_view_of_own_room(customer_id: int) -> dict | None:
    """The admins' Room of one customer (None if they have none), in one query."""
    query = summary_query(ChatRoom).where(ChatRoom.customer_id == customer_id)
    row = db.session.execute(query).one_or_none()
    return room_row_view(row) if row is not None else None


def list_rooms(
    user: User, data: object, *, create_own: bool = False
) -> tuple[list[dict], str | None]:
    """The caller's rooms, most recent activity first: every room for an admin, their
    own for a customer. With `create_own` (the socket's `list_rooms`) a customer who
    has no room yet gets one, announced to the admins."""
    form = parse(ListRooms, data)
    if create_own and not user.is_admin and get_own_room(user) is None:
        with transaction() as session:
            room, created = ensure_own_room(session, user)
            announcement = room_views(ADMIN_VIEW, [room])[0] if created else None
        if announcement:
            events.room_created(announcement)
    rooms, next_cursor = query_rooms(user, form)
    return room_views(user, rooms), next_cursor
