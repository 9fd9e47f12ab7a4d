"""Rooms: the customer's one room (made on demand) and a room's status."""

from __future__ import annotations

from sqlalchemy import false, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..database import on_postgres, transaction
from ..errors import Forbidden, NotFound
from ..extensions import db
from ..models import ChatRoom, Message, RoomEvent, User, utcnow
from ..registry import current_registry
from . import events
from .access import access_room
from .inbox import room_summary
from .payloads import author_view, iso, room_event_view, user_view
from .schemas import RoomRef, SetStatus, parse


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


def open_own_room(user: User) -> None:
    """A customer's "open my conversation" (`list_rooms`): one who has no room yet gets one.
    The team hears of it with its first message (services/inbox.py, `listed_for`).
    Nothing for an admin."""
    if user.is_staff or get_own_room(user) is not None:
        return
    with transaction() as session:
        ensure_own_room(session, user)


def customer_profile(user: User, data: object) -> dict:
    """The agents' panel beside a conversation: who the customer is, since when, when
    they were last here, and how much has been said (admins only)."""
    form = parse(RoomRef, data)
    room = access_room(user, form.room_id)
    if not user.is_staff:
        raise Forbidden("Only the support team sees a customer's details.")
    customer = room.customer
    messages = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.room_id == room.id, Message.internal.is_(false()))
    )
    online = bool(current_registry().online([customer.id]))
    return {
        "customer": user_view(customer),
        "signed_up_at": iso(customer.created_at),
        "online": online,
        "last_seen_at": None
        if online or customer.last_seen_at is None
        else iso(customer.last_seen_at),
        "status": room.status,
        "first_contact_at": iso(room.created_at),
        "message_count": messages,
        # A customer who came through a business's widget: which site vouched for them.
        "site": {"key": customer.site.key, "name": customer.site.name}
        if customer.site_id is not None
        else None,
    }


def set_status(user: User, data: object) -> dict:
    """Open or resolve a room (admins only); returns the Room as the admin sees it."""
    form = parse(SetStatus, data)
    with transaction():
        room = access_room(user, form.room_id, lock=True)
        if not user.is_staff:
            raise Forbidden("Only the support team can change a room's status.")
        changed = room.status != form.status
        room.status = form.status
        if changed:  # resolved: out of the queue; reopened and unassigned: back in it
            room.queued_at = (
                utcnow() if form.status == "open" and room.assignee_id is None else None
            )
        line = record_status(room.id, user, form.status) if changed else None
        db.session.flush()
        admin_room = room_summary("admin", room)
        customer_room = room_summary("customer", room)
        customer_id = room.customer_id
    if changed:
        events.status_changed(admin_room, customer_room, customer_id, line)
        from .assignment import assign_waiting

        assign_waiting()  # a resolved room frees a place; a reopened one may want one
    return admin_room


def record_status(room_id: int, actor: User, status: str, after_message_id=None) -> dict:
    """Write the thread's line for a status change, in the caller's transaction, and
    return it as the contract's RoomEvent. By default it follows the room's newest
    message, notes included. `actor` is a User or a socket's Identity."""
    if after_message_id is None:
        after_message_id = db.session.scalar(
            select(func.max(Message.id)).where(Message.room_id == room_id)
        )
    event = RoomEvent(
        room_id=room_id, actor_id=actor.id, status=status, after_message_id=after_message_id
    )
    db.session.add(event)
    db.session.flush()
    return room_event_view(event, by=author_view(actor))
