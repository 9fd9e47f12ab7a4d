"""The message store: one statement stores a message, on either database.

`store()` locks the message's room (so ids grow in commit order inside a room), makes a
customer's room if they have none yet, inserts the message unless its `client_id` was
stored before, and moves the room's counters. It returns what the ack, `new_message`
and the admins' `room_updated` need (`Stored`). On PostgreSQL that is one PREPAREd
statement, run on the driver's cursor; SQLite, the quick-start default, runs the same
steps as plain statements in the caller's transaction (it has one writer at a time, so
ids follow commit order anyway).

An internal note is stored the same way, and leaves the room as it was: not its last
message, activity time, status or unread counters.

A message's files (attachments uploaded by its author and not yet sent) are linked to it
in the same statement: their rows are locked first, and unless every one named is
there, the author's and unsent, nothing at all is written (`AttachmentsRefused`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from ..database import on_postgres, run_on_driver
from ..models import Attachment, ChatRoom, Message, User


class AttachmentsRefused(Exception):
    """A file named in the send is not the author's unsent upload: nothing was stored."""


@dataclass(frozen=True)
class Stored:
    """What a send stored. `message_id` None: the `client_id` was stored before (a
    retry); `status` and `admin_unread` are the room's after the send (None for a note
    or a retry)."""

    room_id: int
    customer_id: int
    room_created_at: datetime
    customer_name: str
    customer_email: str
    message_id: int | None
    status: str | None
    admin_unread: int | None
    reopened: bool  # a customer's message turned a resolved room open
    customer_read_id: int | None  # the customer's read mark (the admins' receipt)
    created: bool  # this send made the customer's room
    assignee_id: int | None = None  # the room's assignee (None: unassigned)
    assignee_name: str | None = None
    # The send put the room in the queue for automatic assignment: its first message,
    # or a customer's message reopening an unassigned room.
    queued: bool = False
    attachments: list[dict] | None = None  # the files linked, as rows (id, name, …)


# $1 author id, $2 room id (NULL: a customer's own room), $3 body, $4 client id, $5 the
# time, $6 whether a customer writes, $7 whether it is an internal note, $8 the ids of
# the files it carries (an empty array for none).
#
# `found` locks the room. Only when a customer has none does `made` insert it, already
# carrying the message as its last (every part of one statement sees the same snapshot,
# so the room's UPDATE below could not see a row inserted beside it); its message id is
# taken from the sequence here, once the room is known. Two first messages racing: the
# unique customer_id lets one insert the room; the other's statement finds no row at
# all, and is run again (`store`).
# `locked` locks the files named, if they are the author's and unsent; `ok` says whether
# all of them are. Nothing below writes unless they are: no room is made, no message
# stored, and the final row says `fine` false.
PG_PARAMETERS = "(integer, integer, text, varchar, timestamptz, boolean, boolean, integer[])"
MESSAGE_ID = "nextval(pg_get_serial_sequence('messages', 'id'))"


def _pg_send(room_filter: str) -> str:
    return f"""
WITH locked AS (
  SELECT id FROM attachments
   WHERE id = ANY($8) AND uploader_id = $1 AND message_id IS NULL
   FOR UPDATE
), ok AS (
  SELECT count(*) = cardinality($8) AS fine FROM locked
), found AS (
  SELECT id, customer_id, created_at, status, customer_read_id, assignee_id
    FROM chat_rooms WHERE {room_filter} FOR UPDATE
), made AS (
  INSERT INTO chat_rooms (customer_id, status, created_at, last_activity_at,
                          last_message_id, admin_unread, customer_unread, queued_at)
  SELECT $1, 'open', $5, $5, {MESSAGE_ID}, 1, 0, $5
   WHERE $6 AND $2 IS NULL AND NOT $7 AND NOT EXISTS (SELECT 1 FROM found)
     AND (SELECT fine FROM ok)
  ON CONFLICT (customer_id) DO NOTHING
  RETURNING id, customer_id, created_at, status, customer_read_id, last_message_id
), r AS (
  SELECT id, customer_id, created_at, status, customer_read_id, assignee_id,
         NULL::integer AS new_id
    FROM found
  UNION ALL
  SELECT id, customer_id, created_at, status, customer_read_id, NULL::integer,
         last_message_id FROM made
), m AS (
  INSERT INTO messages (id, room_id, author_id, body, client_id, created_at, internal,
                        attachment_count)
  SELECT COALESCE(r.new_id, {MESSAGE_ID}), r.id, $1, $3, $4, $5, $7, cardinality($8)
    FROM r WHERE (SELECT fine FROM ok)
  ON CONFLICT (author_id, client_id) DO NOTHING
  RETURNING id
), a AS (
  UPDATE attachments SET message_id = m.id, position = array_position($8, attachments.id)
    FROM m WHERE attachments.id IN (SELECT id FROM locked)
  RETURNING attachments.id, attachments.name, attachments.content_type, attachments.size,
            attachments.kind, attachments.width, attachments.height, attachments.position
), u AS (
  UPDATE chat_rooms SET
    last_message_id = m.id,
    last_activity_at = $5,
    status = CASE WHEN $6 THEN 'open' ELSE chat_rooms.status END,
    admin_unread = chat_rooms.admin_unread + CASE WHEN $6 THEN 1 ELSE 0 END,
    customer_unread = chat_rooms.customer_unread + CASE WHEN $6 THEN 0 ELSE 1 END,
    queued_at = CASE WHEN $6 AND chat_rooms.assignee_id IS NULL
                      AND (chat_rooms.status = 'resolved' OR chat_rooms.last_message_id IS NULL)
                     THEN $5 ELSE chat_rooms.queued_at END
  FROM m, found WHERE chat_rooms.id = found.id AND NOT $7
  RETURNING chat_rooms.status, chat_rooms.admin_unread, chat_rooms.queued_at = $5 AS queued
)
SELECT r.id, r.customer_id, r.created_at, c.name, c.email, m.id,
       CASE WHEN r.new_id IS NULL THEN u.status ELSE r.status END,
       CASE WHEN r.new_id IS NULL THEN u.admin_unread ELSE 1 END,
       COALESCE(r.status = 'resolved' AND u.status = 'open', false),
       r.customer_read_id, r.new_id IS NOT NULL, r.assignee_id, asg.name,
       COALESCE(u.queued, r.new_id IS NOT NULL AND m.id IS NOT NULL),
       (SELECT json_agg(json_build_object('id', a.id, 'name', a.name,
                'content_type', a.content_type, 'size', a.size, 'kind', a.kind,
                'width', a.width, 'height', a.height) ORDER BY a.position) FROM a),
       ok.fine
  FROM ok LEFT JOIN (r JOIN users c ON c.id = r.customer_id) ON true
  LEFT JOIN users asg ON asg.id = r.assignee_id
  LEFT JOIN m ON true LEFT JOIN u ON true
"""


# Prepared once per database connection (PostgreSQL then plans them once, too).
PREPARED_VERSION = 3
PG_PREPARED = {
    "chat_send_as_customer": _pg_send("customer_id = $1 AND ($2 IS NULL OR id = $2)"),
    "chat_send_as_admin": _pg_send("id = $2"),
}
PG_SEND_AS_CUSTOMER = "EXECUTE chat_send_as_customer(%s, %s, %s, %s, %s, %s, %s, %s)"
PG_SEND_AS_ADMIN = "EXECUTE chat_send_as_admin(%s, %s, %s, %s, %s, %s, %s, %s)"


def prepare_on(connection: Connection) -> None:
    """PREPARE the send statements on this pooled connection, the first time only
    (a prepared statement lives as long as its database session)."""
    if connection.info.get("chat_prepared") == PREPARED_VERSION:
        return
    for name, body in PG_PREPARED.items():
        connection.exec_driver_sql(f"PREPARE {name} {PG_PARAMETERS} AS {body}")
    connection.info["chat_prepared"] = PREPARED_VERSION


def store(
    connection: Connection,
    author: User,
    room_id: int | None,
    body: str,
    client_id: str | None,
    now: datetime,
    internal: bool = False,
    attachments: list[int] = (),
) -> Stored | None:
    """Store one message (or an admin's internal note) in the author's room: a
    customer's own (made if missing), or `room_id`, with the files `attachments`
    names. None when there is no such room for this author; AttachmentsRefused when a
    file is not the author's unsent upload (nothing is stored)."""
    by_customer = not author.is_staff
    attachments = list(attachments)
    if not on_postgres():
        return _store_on_sqlite(
            connection,
            author.id,
            by_customer,
            room_id,
            body,
            client_id,
            now,
            internal,
            attachments,
        )
    prepare_on(connection)
    statement = PG_SEND_AS_CUSTOMER if by_customer else PG_SEND_AS_ADMIN
    parameters = (author.id, room_id, body, client_id, now, by_customer, internal, attachments)
    row = run_on_driver(connection, statement, parameters)
    if row is not None and row[-1] and row[0] is None and by_customer and room_id is None:
        # Another send made this customer's room after this statement began: it is
        # committed now, and the statement run again finds it.
        row = run_on_driver(connection, statement, parameters)
    if row is None:
        return None
    *values, linked, fine = row
    if not fine:
        raise AttachmentsRefused()
    if values[0] is None:
        return None
    return Stored(*values, attachments=linked)


def find_sent(connection: Connection, author: User, client_id: str) -> tuple | None:
    """A message `author` stored before under `client_id` (a retried send), read on the
    connection whose statement found it: id, room id, body, time, internal."""
    query = select(
        Message.id, Message.room_id, Message.body, Message.created_at, Message.internal
    ).where(Message.author_id == author.id, Message.client_id == client_id)
    return connection.execute(query).one_or_none()


def _store_on_sqlite(
    connection: Connection,
    author_id,
    by_customer,
    room_id,
    body,
    client_id,
    now,
    internal,
    attachments,
) -> Stored | None:
    """The same steps as the PostgreSQL statement, one statement each (SQLite has one
    writer at a time: what is checked first stays true until the commit)."""
    if attachments:
        unsent = connection.execute(
            select(Attachment.id).where(
                Attachment.id.in_(attachments),
                Attachment.uploader_id == author_id,
                Attachment.message_id.is_(None),
            )
        ).all()
        if len(unsent) != len(attachments):
            raise AttachmentsRefused()
    assignee = aliased(User)
    columns = (
        ChatRoom.id,
        ChatRoom.customer_id,
        ChatRoom.created_at,
        User.name,
        User.email,
        ChatRoom.status,
        ChatRoom.customer_read_id,
        ChatRoom.assignee_id,
        assignee.name,
        ChatRoom.last_message_id,
    )
    if by_customer:  # the customer, with their room if they have one
        room_query = (
            select(*columns)
            .select_from(User)
            .outerjoin(ChatRoom, ChatRoom.customer_id == User.id)
            .where(User.id == author_id)
        )
    else:
        room_query = select(*columns).join(User, User.id == ChatRoom.customer_id)
    room_query = room_query.outerjoin(assignee, assignee.id == ChatRoom.assignee_id)
    if room_id is not None:
        room_query = room_query.where(ChatRoom.id == room_id)
    room = connection.execute(room_query).one_or_none()
    created = False
    if room is not None and room.id is None:  # a customer without a room yet
        if room_id is not None or internal:
            return None
        made = connection.execute(
            sqlite.insert(ChatRoom)
            .values(customer_id=author_id, status="open", created_at=now, last_activity_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id"])
            .returning(ChatRoom.id, ChatRoom.created_at)
        ).one_or_none()
        if made is None:  # another send made it first
            room = connection.execute(room_query).one()
        else:
            room = (
                made.id,
                author_id,
                made.created_at,
                room.name,
                room.email,
                "open",
                None,
                None,
                None,
                None,
            )
            created = True
    if room is None:
        return None
    *room_values, was, customer_read_id, assignee_id, assignee_name, last_id = room
    message_id = connection.execute(
        sqlite.insert(Message)
        .values(
            room_id=room_values[0],
            author_id=author_id,
            body=body,
            client_id=client_id,
            created_at=now,
            internal=internal,
            attachment_count=len(attachments),
        )
        .on_conflict_do_nothing(index_elements=["author_id", "client_id"])
        .returning(Message.id)
    ).scalar()
    linked = _link_on_sqlite(connection, message_id, attachments)
    if message_id is None or internal:
        return Stored(
            *room_values,
            message_id,
            None,
            None,
            False,
            customer_read_id,
            created,
            assignee_id,
            assignee_name,
            created and message_id is not None,
            linked,
        )
    queued = by_customer and assignee_id is None and (was == "resolved" or last_id is None)
    status, admin_unread = connection.execute(
        update(ChatRoom)
        .where(ChatRoom.id == room_values[0])
        .values(
            last_message_id=message_id,
            last_activity_at=now,
            status="open" if by_customer else ChatRoom.status,
            admin_unread=ChatRoom.admin_unread + (1 if by_customer else 0),
            customer_unread=ChatRoom.customer_unread + (0 if by_customer else 1),
            queued_at=now if queued or created else ChatRoom.queued_at,
        )
        .returning(ChatRoom.status, ChatRoom.admin_unread)
        .execution_options(synchronize_session=False)
    ).one()
    reopened = was == "resolved" and status == "open"
    return Stored(
        *room_values,
        message_id,
        status,
        admin_unread,
        reopened,
        customer_read_id,
        created,
        assignee_id,
        assignee_name,
        queued or created,
        linked,
    )


def _link_on_sqlite(connection: Connection, message_id, attachments) -> list[dict] | None:
    if message_id is None or not attachments:
        return None
    for position, attachment_id in enumerate(attachments, start=1):
        linked = connection.execute(
            update(Attachment)
            .where(Attachment.id == attachment_id, Attachment.message_id.is_(None))
            .values(message_id=message_id, position=position)
            .execution_options(synchronize_session=False)
        )
        if linked.rowcount != 1:  # taken by another send since the check: take it back
            connection.execute(delete(Message).where(Message.id == message_id))
            raise AttachmentsRefused()
    rows = connection.execute(
        select(
            Attachment.id,
            Attachment.name,
            Attachment.content_type,
            Attachment.size,
            Attachment.kind,
            Attachment.width,
            Attachment.height,
        )
        .where(Attachment.message_id == message_id)
        .order_by(Attachment.position)
    ).all()
    return [dict(row._mapping) for row in rows]
