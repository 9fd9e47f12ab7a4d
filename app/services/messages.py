"""Messages: sending (one transaction, announced after commit) and reading history."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import joinedload

from ..database import core_transaction, transaction
from ..errors import Forbidden, NotFound, ValidationError
from ..extensions import db
from ..models import ChatRoom, Message, RoomEvent, User, utcnow
from ..serving import admitted
from . import availability, events, notify
from .access import visible_to
from .attachments import views_for
from .inbox import room_summary
from .limits import check_send_rate
from .payloads import (
    assignee_view,
    message_view,
    room_event_view,
    sent_message_view,
    sent_room_view,
    stored_message_view,
)
from .rooms import record_status
from .schemas import MAX_BODY, History, SendMessage, parse
from .store import AttachmentsRefused, find_sent, store


def send_message(user: User, data: object) -> dict:
    """Store one message and announce it; returns the contract's Message.

    1. Check the sender and the payload (the rate limit, the schema, who may write
       where).
    2. Admit: the room's turn and a database connection, within one deadline, else
       `rate_limited` (app/serving.py).
    3. Store: one statement (services/store.py), which makes a customer's room in the
       same transaction only when it finds none. A retried `client_id` is answered with
       the message already stored, read on the same connection, and announced again to
       nobody.
    4. Announce, after the commit (services/events.py).
    """
    automatic = user.email == availability.BOT_EMAIL  # the team's automatic reply
    if not automatic:  # (its replies to many rooms share no one's send limit)
        check_send_rate(user.id)
    form = parse(SendMessage, data)
    if user.is_staff and form.room_id is None:
        raise ValidationError("room_id: an admin must name the room")
    if form.internal and not user.is_staff:
        raise Forbidden("Only the support team writes internal notes.")
    if not form.body and not form.attachments:
        raise ValidationError(
            f"body: must be 1 to {MAX_BODY} characters after trimming",
            {"body": "empty without files"},
        )
    now = utcnow()
    # A customer's sends go to their one room; an admin's to the room named.
    room_key = ("room", form.room_id) if user.is_staff else ("customer", user.id)
    with admitted(room_key), core_transaction(one_statement=True) as connection:
        try:
            stored = store(
                connection,
                user,
                form.room_id,
                form.body,
                form.client_id,
                now,
                form.internal,
                form.attachments,
            )
        except AttachmentsRefused:
            # A retry's files are the ones its first send linked: answer it as sent.
            row = form.client_id and find_sent(connection, user, form.client_id)
            if not row:
                raise ValidationError(
                    "attachments: a file is unknown, someone else's, or already sent",
                    {"attachments": "not yours, or already sent"},
                ) from None
            stored = None
        else:
            row = None
            if stored is not None and stored.message_id is None:  # a retry: stored before
                row = find_sent(connection, user, form.client_id)
        if row:
            files = views_for([row[0]]).get(row[0])  # rare: a retry, files or not
            return stored_message_view(row, user, form.client_id, files)
    if stored is None:
        raise NotFound("No such room.")
    message = sent_message_view(stored, user, form.body, form.client_id, now, form.internal)
    if form.internal:  # a note: the admins alone hear it, and the room stays as it was
        events.note_added(message)
        return message
    admin_room = sent_room_view(stored, message, by_customer=not user.is_staff)
    if stored.created:
        events.room_created(admin_room)
    events.message_sent(message, stored.customer_id, admin_room)
    _after_send(user, stored, automatic)
    if stored.reopened:  # rare: the room and the team's thread line, in a transaction of their own
        with transaction():
            line = record_status(stored.room_id, user, "open", after_message_id=stored.message_id)
            customer_room = room_summary("customer", db.session.get(ChatRoom, stored.room_id))
        events.customer_room_changed(customer_room, stored.customer_id, line)
    if stored.queued:  # rare: a new or reopened conversation waits for someone
        assign_waiting()
    if form.reply_anyway and user.is_staff and stored.assignee_id not in (None, user.id):
        _record_reply_anyway(user, stored)  # rare: asked, and answered over someone
    return message


def _record_reply_anyway(user, stored) -> None:
    """The thread's line "Ana replied although Ben is assigned", for the team."""
    from .assignment import record_line

    with transaction() as session:
        line = record_line(
            session,
            stored.room_id,
            user,
            stored.assignee_id,
            stored.status,
            stored.message_id,
            utcnow(),
            kind="reply_anyway",
            assignee=assignee_view(stored.assignee_id, stored.assignee_name),
        )
    events.room_line(line)


def assign_waiting() -> None:
    """One round: a send frees no member's place, so at most its own room (or an older
    waiting one) is given."""
    from .assignment import assign_waiting as give_out

    give_out(rounds=1, wait=False)


def _after_send(user, stored, automatic: bool) -> None:
    """Jobs that follow a stored message. The message is stored and announced already:
    a queue that fails here is logged, and the sweep (app/jobs.py) finds what it
    missed."""
    try:
        if automatic:
            return
        if user.is_staff:  # a reply: emailed later if the customer has not seen it
            notify.customer_email_due_at(stored.room_id)
            availability.team_wrote(stored.room_id)
        elif availability.auto_reply_due():  # the team is away: its automatic reply, a job
            availability.reply_when_away(stored.room_id, stored.message_id)
    except Exception:
        current_app.logger.exception("jobs after message %s not queued", stored.message_id)


def list_history(user: User, data: object) -> tuple[list[dict], bool, list[dict]]:
    """A page of a room's messages, oldest first, whether more lie beyond it, and (for
    the team) the room's status lines that fall among them.

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
    if not user.is_staff:  # internal notes are the support team's alone
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
    lines = page_events(form, found, has_more) if user.is_staff else []
    with_files = [m.id for m in found if m.attachment_count]
    files = views_for(with_files) if with_files else {}  # a statement only when needed
    return [message_view(m, files.get(m.id)) for m in found], has_more, lines


def page_events(form: History, found: list[Message], has_more: bool) -> list[dict]:
    """The status lines placed within this page: after one of its messages, or, at the
    ends of the thread, before the first message or after the last."""
    after = RoomEvent.after_message_id
    if form.after_id is not None:  # newer than the client has: from `after_id` on
        span = [after >= form.after_id]
        if has_more:
            span.append(after <= found[-1].id)
    else:  # a page ending before `before_id`, or the newest page
        span = []
        if form.before_id is not None:
            span.append(after < form.before_id)
        if has_more:
            span.append(after >= found[0].id)
        elif form.before_id is not None:  # the oldest page: lines before any message too
            span = [or_(after.is_(None), and_(*span))]
    lines = db.session.scalars(
        select(RoomEvent).where(RoomEvent.room_id == form.room_id, *span).order_by(RoomEvent.id)
    ).all()
    return [room_event_view(line) for line in lines]
