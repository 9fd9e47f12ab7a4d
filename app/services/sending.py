"""The send path: one SQL statement per message on PostgreSQL, prepared, run on the
driver's cursor (no ORM, no SQLAlchemy result machinery).

`store_message` locks the room row (so ids grow in commit order inside a room), inserts
the message unless its `client_id` was seen before, and moves the room's counters, all
in one statement, and returns everything the ack, `new_message` and the admins'
`room_updated` need. SQLite, the quick-start default, keeps the same meaning with three
plain statements (it has one writer at a time, so ids follow commit order anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..models import ChatRoom, Message, User
from .transaction import on_postgres, run_all_on_driver, run_on_driver

# $1 author id, $2 room id (or NULL: a customer's own room), $3 body, $4 client id,
# $5 the time, $6 whether a customer writes.
PG_PARAMETERS = "(integer, integer, text, varchar, timestamptz, boolean)"


def _pg_send(room_filter: str) -> str:
    return f"""
WITH r AS (
  SELECT id, customer_id, created_at, status, customer_read_id
    FROM chat_rooms WHERE {room_filter} FOR UPDATE
), m AS (
  INSERT INTO messages (room_id, author_id, body, client_id, created_at)
  SELECT r.id, $1, $3, $4, $5 FROM r
  ON CONFLICT (author_id, client_id) DO NOTHING
  RETURNING id
), u AS (
  UPDATE chat_rooms SET
    last_message_id = m.id,
    last_activity_at = $5,
    status = CASE WHEN $6 THEN 'open' ELSE chat_rooms.status END,
    admin_unread = chat_rooms.admin_unread + CASE WHEN $6 THEN 1 ELSE 0 END,
    customer_unread = chat_rooms.customer_unread + CASE WHEN $6 THEN 0 ELSE 1 END
  FROM m, r WHERE chat_rooms.id = r.id
  RETURNING chat_rooms.status, chat_rooms.admin_unread
)
SELECT r.id AS room_id, r.customer_id, r.created_at AS room_created_at,
       c.name AS customer_name, c.email AS customer_email,
       m.id AS message_id, u.status, u.admin_unread,
       (r.status = 'resolved' AND u.status = 'open') AS reopened, r.customer_read_id
  FROM r JOIN users c ON c.id = r.customer_id LEFT JOIN m ON true LEFT JOIN u ON true
"""


# Several messages of one customer into their own room, in one statement: the sends
# that waited for the room's turn together (services/messages.py). $1 the customer's
# id, $2 bodies, $3 client ids (distinct, none NULL), $4 times, in the order sent. One
# row per message, in that order: its id (NULL for a client id stored before) and the
# admins' unread count just after it; a reopened room shows on its first message.
PG_SEND_TOGETHER = """
WITH r AS (
  SELECT id, customer_id, created_at, status, customer_read_id
    FROM chat_rooms WHERE customer_id = $1 FOR UPDATE
), b AS (
  SELECT * FROM unnest($2::text[], $3::varchar[], $4::timestamptz[])
    WITH ORDINALITY AS b(body, client_id, at, n)
), m AS (
  INSERT INTO messages (room_id, author_id, body, client_id, created_at)
  SELECT r.id, $1, b.body, b.client_id, b.at FROM r, b ORDER BY b.n
  ON CONFLICT (author_id, client_id) DO NOTHING
  RETURNING id, client_id
), k AS (
  SELECT count(*) AS inserted, max(m.id) AS last_id, max(b.at) AS last_at
    FROM m JOIN b ON b.client_id = m.client_id
), u AS (
  UPDATE chat_rooms SET
    last_message_id = k.last_id,
    last_activity_at = k.last_at,
    status = 'open',
    admin_unread = chat_rooms.admin_unread + k.inserted
  FROM r, k WHERE chat_rooms.id = r.id AND k.inserted > 0
  RETURNING chat_rooms.status, chat_rooms.admin_unread
)
SELECT r.id, r.customer_id, r.created_at, c.name, c.email,
       mm.id, u.status, u.admin_unread - k.inserted + mm.nth,
       (r.status = 'resolved' AND u.status = 'open' AND mm.nth = 1), r.customer_read_id
  FROM r JOIN users c ON c.id = r.customer_id CROSS JOIN b CROSS JOIN k
  LEFT JOIN (SELECT id, client_id, row_number() OVER (ORDER BY id) AS nth FROM m) mm
    ON mm.client_id = b.client_id
  LEFT JOIN u ON true
 ORDER BY b.n
"""

# Prepared once per database connection (PostgreSQL then plans them once, too).
PG_PREPARED = {
    "chat_send_as_customer": _pg_send("customer_id = $1 AND ($2 IS NULL OR id = $2)"),
    "chat_send_as_admin": _pg_send("id = $2"),
}
PG_SEND_TOGETHER_PARAMETERS = "(integer, text[], varchar[], timestamptz[])"
PG_SEND_TOGETHER_EXECUTE = "EXECUTE chat_send_together(%s, %s, %s, %s)"


PG_SEND_AS_CUSTOMER = "EXECUTE chat_send_as_customer(%s, %s, %s, %s, %s, %s)"
PG_SEND_AS_ADMIN = "EXECUTE chat_send_as_admin(%s, %s, %s, %s, %s, %s)"


def prepare_on(connection: Connection) -> None:
    """PREPARE the send statements on this pooled connection, the first time only
    (a prepared statement lives as long as its database session)."""
    if connection.info.get("chat_prepared"):
        return
    for name, body in PG_PREPARED.items():
        connection.exec_driver_sql(f"PREPARE {name} {PG_PARAMETERS} AS {body}")
    connection.exec_driver_sql(
        f"PREPARE chat_send_together {PG_SEND_TOGETHER_PARAMETERS} AS {PG_SEND_TOGETHER}"
    )
    connection.info["chat_prepared"] = True


@dataclass(frozen=True)
class Stored:
    """What a send stored (message_id None: the client_id was seen before)."""

    room_id: int
    customer_id: int
    room_created_at: datetime
    customer_name: str
    customer_email: str
    message_id: int | None
    status: str | None
    admin_unread: int | None
    reopened: bool | None = False  # a customer's message turned a resolved room open
    customer_read_id: int | None = None  # the customer's read mark (the admins' receipt)


def store_message(
    session: Connection,
    author: User,
    room_id: int | None,
    body: str,
    client_id: str | None,
    now: datetime,
) -> Stored | None:
    """Store one message in the author's room (a customer's own, or `room_id`); None
    when there is no such room for this author."""
    if on_postgres():
        prepare_on(session)
        statement = PG_SEND_AS_ADMIN if author.is_admin else PG_SEND_AS_CUSTOMER
        row = run_on_driver(
            session, statement, (author.id, room_id, body, client_id, now, not author.is_admin)
        )
        return Stored(*row) if row is not None else None
    params = {
        "author_id": author.id,
        "room_id": room_id,
        "body": body,
        "client_id": client_id,
        "now": now,
        "by_customer": not author.is_admin,
    }
    return _store_on_sqlite(session, params)


def store_together(
    session: Connection, customer: User, sends: list[tuple[str, str, datetime]]
) -> list[Stored] | None:
    """Store several messages of one customer into their own room, in one statement
    (PostgreSQL): `sends` are (body, client_id, time), client ids distinct. One Stored
    per send, in order (message_id None: that client_id was stored before); None when
    the customer has no room."""
    prepare_on(session)
    bodies, client_ids, times = (list(column) for column in zip(*sends, strict=True))
    rows = run_all_on_driver(
        session, PG_SEND_TOGETHER_EXECUTE, (customer.id, bodies, client_ids, times)
    )
    if not rows:
        return None
    return [Stored(*row) for row in rows]


def _store_on_sqlite(session: Connection, p: dict) -> Stored | None:
    room_query = select(
        ChatRoom.id,
        ChatRoom.customer_id,
        ChatRoom.created_at,
        User.name,
        User.email,
        ChatRoom.status,
        ChatRoom.customer_read_id,
    ).join(User, User.id == ChatRoom.customer_id)
    if p["by_customer"]:
        room_query = room_query.where(ChatRoom.customer_id == p["author_id"])
    if p["room_id"] is not None:
        room_query = room_query.where(ChatRoom.id == p["room_id"])
    room = session.execute(room_query).one_or_none()
    if room is None:
        return None
    *room_values, was, customer_read_id = room
    message_id = session.execute(
        sqlite.insert(Message)
        .values(
            room_id=room.id,
            author_id=p["author_id"],
            body=p["body"],
            client_id=p["client_id"],
            created_at=p["now"],
        )
        .on_conflict_do_nothing(index_elements=["author_id", "client_id"])
        .returning(Message.id)
    ).scalar()
    if message_id is None:
        return Stored(*room_values, None, None, None, False, customer_read_id)
    by_customer = p["by_customer"]
    status, admin_unread = session.execute(
        update(ChatRoom)
        .where(ChatRoom.id == room.id)
        .values(
            last_message_id=message_id,
            last_activity_at=p["now"],
            status="open" if by_customer else ChatRoom.status,
            admin_unread=ChatRoom.admin_unread + (1 if by_customer else 0),
            customer_unread=ChatRoom.customer_unread + (0 if by_customer else 1),
        )
        .returning(ChatRoom.status, ChatRoom.admin_unread)
        .execution_options(synchronize_session=False)
    ).one()
    reopened = was == "resolved" and status == "open"
    return Stored(*room_values, message_id, status, admin_unread, reopened, customer_read_id)


def store_note(
    session: Connection, author: User, room_id: int, body: str, client_id: str | None, now
) -> Stored | None:
    """Store an admin's internal note in room `room_id`; None when there is no such room.

    A note is not a message to the customer: the room's last message, activity time,
    status and unread counters stay as they are. The room's row is still locked, so a
    note's id follows commit order like every message's (an admin's resync by
    `after_id` misses none)."""
    room_query = (
        select(ChatRoom.id, ChatRoom.customer_id, ChatRoom.created_at, User.name, User.email)
        .join(User, User.id == ChatRoom.customer_id)
        .where(ChatRoom.id == room_id)
    )
    if on_postgres():
        room_query = room_query.with_for_update(of=ChatRoom)
    room = session.execute(room_query).one_or_none()
    if room is None:
        return None
    dialect = postgresql if on_postgres() else sqlite
    message_id = session.execute(
        dialect.insert(Message)
        .values(
            room_id=room.id,
            author_id=author.id,
            body=body,
            client_id=client_id,
            created_at=now,
            internal=True,
        )
        .on_conflict_do_nothing(index_elements=["author_id", "client_id"])
        .returning(Message.id)
    ).scalar()
    return Stored(*room, message_id, None, None)
