"""Messages: sending (one transaction, announced after commit) and reading history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import and_, false, select
from sqlalchemy.orm import joinedload

from ..errors import Busy, Forbidden, InternalError, NotFound, ValidationError
from ..extensions import db
from ..models import ChatRoom, Message, User, utcnow
from . import events
from .access import visible_to
from .inbox import room_summary
from .limits import check_send_rate
from .payloads import message_view, sent_message_view, sent_room_view
from .rooms import create_own_room
from .schemas import History, SendMessage, parse
from .sending import store_message, store_note, store_together
from .transaction import core_transaction, on_postgres


def send_message(user: User, data: object) -> dict:
    """Store one message and announce it; returns the stored Message.

    One statement on PostgreSQL (services/sending.py): the room's row is locked for the
    length of the transaction, so sends to a room commit one at a time and ids grow in
    commit order. A customer's first message makes their room first. A retried
    `client_id` returns the message already stored and announces nothing.
    """
    check_send_rate(user.id)
    form = parse(SendMessage, data)
    if user.is_admin and form.room_id is None:
        raise ValidationError("room_id: an admin must name the room")
    if form.internal:
        return _add_note(user, form)
    makes_own_room = not user.is_admin and form.room_id is None
    now = utcnow()
    # A customer's sends go to their one room; an admin's to the room named.
    room_key = ("room", form.room_id) if user.is_admin else ("customer", user.id)
    created, stored = False, None
    if makes_own_room and form.client_id is not None and on_postgres() and _room_known(user.id):
        stored = _store_in_turn(user, form.body, form.client_id, now, room_key)
    if stored is None:
        with send_slot(room_key):
            # A room known to exist takes the one statement alone; else the room is
            # made first, in the same transaction.
            created = makes_own_room and not _room_known(user.id)
            with core_transaction(one_statement=not created) as session:
                if created:
                    created = create_own_room(session, user.id)
                stored = store_message(session, user, form.room_id, form.body, form.client_id, now)
            if stored is None and makes_own_room and not created:  # the room is gone
                with core_transaction() as session:
                    created = create_own_room(session, user.id)
                    stored = store_message(session, user, None, form.body, form.client_id, now)
    if stored is None:
        raise NotFound("No such room.")
    if stored.message_id is None:  # a retry: the message is stored already
        return message_view(_find_by_client_id(user, form.client_id))
    if not user.is_admin:
        _remember_room(user.id)
    message = sent_message_view(stored, user, form.body, form.client_id, now)
    admin_room = sent_room_view(stored, message, by_customer=not user.is_admin)
    if created:
        events.room_created(admin_room)
    events.message_sent(message, stored.customer_id, admin_room)
    if stored.reopened:  # a status change: the customer's tabs hear it too (rare: a query)
        events.customer_room_changed(
            room_summary("customer", db.session.get(ChatRoom, stored.room_id)), stored.customer_id
        )
    return message


# At most this many waiting sends of a room go into one statement.
TOGETHER_MAX = 32


class _Waiting:
    """A send waiting for its room's turn; whoever holds the turn may store it."""

    __slots__ = ("body", "client_id", "now", "deadline", "done", "stored", "error")

    def __init__(self, body: str, client_id: str, now, deadline: float) -> None:
        self.body, self.client_id, self.now, self.deadline = body, client_id, now, deadline
        self.done, self.stored, self.error = False, None, None


def _store_in_turn(user: User, body: str, client_id: str, now, room_key):
    """Store a customer's message in their room once it is the room's turn, together
    with the room's other sends waiting then: one statement for all of them.

    A send into a room waits while the send before it is in the database
    (services/turns.py). Under a flood several wait at once; when one gets the turn it
    stores every waiting send of the room (the oldest first, one client_id once), and
    their own tasks, when their turn comes, find the work done and announce their
    messages as usual. A failure answers every send of that statement alike; nothing
    of it was stored. With nobody else waiting, it is the one statement of any send.

    Returns the send's Stored, or None when the room was not found (the caller's
    ordinary path then makes it)."""
    config = current_app.config
    deadline = time.monotonic() + config["CHAT_SEND_WAIT"]
    turns = current_app.extensions["chat_room_turns"]
    mine = _Waiting(body, client_id, now, deadline)
    entry = turns.join(room_key, mine, timeout=config["CHAT_SEND_WAIT"])
    if entry is None:
        raise Busy()
    try:
        while not mine.done:
            batch = turns.take(entry, TOGETHER_MAX, distinct=lambda w: w.client_id)
            if not batch:  # cannot happen: our own send is still queued
                raise RuntimeError("a send waiting for its turn was lost")
            # A slot is waited for as long as the youngest send of the batch may wait.
            _store_batch(user, batch, max(w.deadline for w in batch))
    finally:
        turns.release(room_key)
    if mine.error is not None:
        raise mine.error
    return mine.stored


def _store_batch(user: User, batch: list[_Waiting], deadline: float) -> None:
    try:
        with connection_slot(deadline), core_transaction(one_statement=True) as session:
            if len(batch) == 1:
                w = batch[0]
                results = [store_message(session, user, None, w.body, w.client_id, w.now)]
            else:
                results = store_together(
                    session, user, [(w.body, w.client_id, w.now) for w in batch]
                ) or [None] * len(batch)
    except Exception as exc:  # every send of the statement gets the same answer
        for w in batch:
            w.error, w.done = exc, True
        return
    except BaseException:  # this task is being stopped: the others answer for themselves
        for w in batch:  # (stored or not is unknown: a retry finds out, by its client_id)
            w.error, w.done = InternalError(), True
        raise
    for w, stored in zip(batch, results, strict=True):
        w.stored, w.done = stored, True


def _add_note(user: User, form: SendMessage) -> dict:
    """An internal note: stored like a message, heard by the admins alone."""
    if not user.is_admin:
        raise Forbidden("Only the support team writes internal notes.")
    now = utcnow()
    with send_slot(), core_transaction() as session:
        stored = store_note(session, user, form.room_id, form.body, form.client_id, now)
    if stored is None:
        raise NotFound("No such room.")
    if stored.message_id is None:  # a retry: the note is stored already
        return message_view(_find_by_client_id(user, form.client_id))
    note = sent_message_view(stored, user, form.body, form.client_id, now, internal=True)
    events.note_added(note)
    return note


@contextmanager
def send_slot(room_key=None) -> Iterator[None]:
    """The room's turn (services/turns.py), then one of the database connections sends
    may hold; both waited for at most CHAT_SEND_WAIT seconds in all, else `Busy`."""
    deadline = time.monotonic() + current_app.config["CHAT_SEND_WAIT"]
    turns = current_app.extensions["chat_room_turns"]
    if room_key is not None and not turns.acquire(room_key, deadline - time.monotonic()):
        raise Busy()
    try:
        with connection_slot(deadline):
            yield
    finally:
        if room_key is not None:
            turns.release(room_key)


@contextmanager
def connection_slot(deadline: float) -> Iterator[None]:
    """One of the database connections sends may hold (all but DATABASE_POOL_RESERVED,
    which stay for reads), waited for until `deadline` (monotonic), else `Busy`."""
    slots = current_app.extensions["chat_send_slots"]
    if not slots.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
        raise Busy()
    try:
        yield
    finally:
        slots.release()


def _room_known(customer_id: int) -> bool:
    return customer_id in current_app.extensions["chat_customers_with_room"]


def _remember_room(customer_id: int) -> None:
    # A room never goes away while its customer exists; if it does (the data was
    # deleted), the send finds no room and makes it again.
    current_app.extensions["chat_customers_with_room"].add(customer_id)


def _find_by_client_id(user: User, client_id: str) -> Message:
    query = select(Message).where(Message.author_id == user.id, Message.client_id == client_id)
    return db.session.scalars(query).one()


def list_history(user: User, data: object) -> tuple[list[dict], bool]:
    """A page of a room's messages, oldest first, and whether more lie beyond it.

    With `after_id` the page starts just after it and `has_more` says newer messages
    remain; otherwise the page ends just before `before_id` (or at the newest message)
    and `has_more` says older ones remain.
    """
    form = parse(History, data)
    # One query: the room (so a room the user may not see is `not_found`), outer-joined
    # to the page of its messages; a room with no messages gives one row with None.
    in_page = [Message.room_id == ChatRoom.id]
    if form.before_id is not None:
        in_page.append(Message.id < form.before_id)
    if form.after_id is not None:
        in_page.append(Message.id > form.after_id)
    if not user.is_admin:  # internal notes are the support team's alone
        in_page.append(Message.internal.is_(false()))
    query = (
        select(ChatRoom.id, Message)
        .outerjoin(Message, and_(*in_page))
        .options(joinedload(Message.author, innerjoin=False))  # outer, like the page
        .where(ChatRoom.id == form.room_id, *visible_to(user))
        .order_by(Message.id.asc() if form.after_id is not None else Message.id.desc())
        .limit(form.limit + 1)
    )
    rows = db.session.execute(query).all()
    if not rows:
        raise NotFound("No such room.")
    found = [message for _, message in rows if message is not None]
    has_more = len(found) > form.limit
    found = found[: form.limit]
    if form.after_id is None:
        found.reverse()
    return [message_view(m) for m in found], has_more
