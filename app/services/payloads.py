"""JSON shapes of the contract's objects, each built from an allow-list of fields.

Whatever a model grows later, a client only ever sees the keys named here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..models import ChatRoom, Message, RoomEvent, User


def iso(dt: datetime | None) -> str | None:
    """UTC, ISO 8601 with milliseconds and `Z` (SQLite hands back naive UTC times)."""
    if dt is None:
        return None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def user_view(user: User) -> dict:
    return {"id": user.id, "name": user.name, "email": user.email, "role": user.role}


def author_view(user: User) -> dict:
    return {"id": user.id, "name": user.name, "role": user.role}


def message_view(message: Message, attachments: list[dict] | None = None) -> dict:
    return _message(
        message.id,
        message.room_id,
        author_view(message.author),
        message.body,
        message.created_at,
        message.client_id,
        message.internal,
        attachments,
    )


def room_event_view(
    event: RoomEvent, by: dict | None = None, assignee: dict | None | bool = False
) -> dict:
    """The contract's RoomEvent (staff only): a line in the thread for a status change
    (`kind` "status"), an assignment ("assigned": `assignee` {id, name}, null for
    unassigned; `by` null when automatic) or a reply over someone's assignment
    ("reply_anyway": `assignee` is whom it was over). `by` and `assignee`: the views
    when the caller has them (else read from the row)."""
    if by is None and event.actor is not None:
        by = author_view(event.actor)
    view = {
        "id": event.id,
        "room_id": event.room_id,
        "kind": event.kind or "status",
        "status": event.status,
        "by": by,
        "after_message_id": event.after_message_id,
        "created_at": iso(event.created_at),
    }
    if view["kind"] != "status":
        if assignee is False:
            member = event.assignee
            assignee = assignee_view(member.id, member.name) if member is not None else None
        view["assignee"] = assignee
    return view


def _message(
    message_id, room_id, author: dict, body, created_at, client_id, internal=False, files=None
) -> dict:
    """The contract's Message: the one place its keys are written. `internal`: a note
    for the support team (only ever built for admins' eyes); `files`: its Attachments,
    in the order sent."""
    return {
        "id": message_id,
        "room_id": room_id,
        "author": author,
        "body": body,
        "created_at": iso(created_at),
        "client_id": client_id,
        "internal": bool(internal),
        "attachments": list(files or ()),
    }


def room_view(
    room: ChatRoom,
    last_message: Message | None,
    last_files: list[dict] | None,
    unread_count: int,
    customer_online: bool,
    seen_up_to: int | None,
    for_staff: bool = True,
) -> dict:
    view = {
        "id": room.id,
        "customer": user_view(room.customer),
        "status": room.status,
        "created_at": iso(room.created_at),
        "last_message": message_view(last_message, last_files) if last_message else None,
        "unread_count": unread_count,
        "customer_online": customer_online,
        "seen_up_to": seen_up_to,
    }
    if for_staff:  # who on the team has it: the team's business, not the customer's
        view["assignee"] = assignee_view(
            room.assignee_id, room.assignee.name if room.assignee else None
        )
    return view


def assignee_view(assignee_id: int | None, name: str | None) -> dict | None:
    return {"id": assignee_id, "name": name} if assignee_id is not None else None


def sent_message_view(
    stored, author: User, body: str, client_id: str | None, now, internal: bool = False
) -> dict:
    """The Message a send just stored, from what the send statement returned (its
    files included, as rows)."""
    from .attachments import view_from_row

    files = [view_from_row(row) for row in stored.attachments or ()]
    return _message(
        stored.message_id,
        stored.room_id,
        author_view(author),
        body,
        now,
        client_id,
        internal,
        files,
    )


def stored_message_view(row, author: User, client_id: str, files=None) -> dict:
    """A Message `author` stored before under `client_id`, from its row: id, room id,
    body, time, internal (services/store.py, `find_sent`)."""
    message_id, room_id, body, created_at, internal = row
    author = author_view(author)
    return _message(message_id, room_id, author, body, created_at, client_id, internal, files)


def sent_room_view(stored, message: dict, *, by_customer: bool) -> dict:
    """The admins' Room after a send: the message is its last, the counters are fresh.
    A customer's own send comes from a socket they have open: they are online, and the
    registry (a Redis round trip with several processes) need not be asked."""
    return _admin_room(
        stored.room_id,
        stored.customer_id,
        stored.customer_name,
        stored.customer_email,
        stored.status,
        stored.room_created_at,
        stored.admin_unread,
        message,
        stored.customer_read_id,
        online=True if by_customer else None,
        assignee=assignee_view(stored.assignee_id, stored.assignee_name),
    )


def room_row_view(row) -> dict:
    """The admins' Room from one row of columns: room id, customer id, status, created,
    admin unread, customer name and email, then the last message's id, body, client
    id and time, its author's id, name and role, and its file count (all None without a
    message), and the assignee's id and name."""
    (room_id, customer_id, status, created_at, unread, seen, name, email, *last) = row
    message_id, body, client_id, sent_at, author_id, author_name, author_role, count = last[:8]
    assignee = assignee_view(*last[8:10])
    last_message = None
    if message_id is not None:
        author = {"id": author_id, "name": author_name, "role": author_role}
        files = None
        if count:  # rare on these paths: one more statement for the message's files
            from .attachments import views_for

            files = views_for([message_id]).get(message_id)
        last_message = _message(message_id, room_id, author, body, sent_at, client_id, False, files)
    return _admin_room(
        room_id,
        customer_id,
        name,
        email,
        status,
        created_at,
        unread,
        last_message,
        seen,
        assignee=assignee,
    )


def _admin_room(
    room_id,
    customer_id,
    name,
    email,
    status,
    created_at,
    unread,
    last,
    seen,
    online=None,
    assignee=None,
) -> dict:
    """The contract's Room as the admins see it, from plain values (the hot paths);
    whether the customer is online is asked of the registry unless `online` says."""
    from ..registry import current_registry

    if online is None:
        online = bool(current_registry().online([customer_id]))

    return {
        "id": room_id,
        "customer": {"id": customer_id, "name": name, "email": email, "role": "customer"},
        "status": status,
        "created_at": iso(created_at),
        "last_message": last,
        "unread_count": unread,
        "customer_online": online,
        "seen_up_to": seen,
        "assignee": assignee,
    }


def typing_view(room_id: int, user: User, is_typing: bool) -> dict:
    return {"room_id": room_id, "user": author_view(user), "is_typing": is_typing}


def read_view(room_id: int, user: User, message_id: int) -> dict:
    return {"room_id": room_id, "user_id": user.id, "message_id": message_id}
