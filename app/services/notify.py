"""Emails to customers about replies they have not seen (issue 22).

An agent's reply starts a check after CHAT_EMAIL_DELAY (a job, app/jobs.py); a sweep
every minute and at each start finds what a lost job missed. A check emails the
customer every reply of that burst they have not seen, once the oldest has waited the
delay and the customer has no socket open anywhere.

Never twice: a check first claims the room (one conditional UPDATE: no claim, or a
claim that ran out), sends, then records the last message the email covered and drops
the claim (only its own: the claim's end is its token). A job killed mid-send leaves
its claim to run out (CLAIM_SECONDS); a later
check sends the email again. The one duplicate possible: the SMTP server accepted the
mail and the process died before recording it (docs/RELIABILITY.md). Never lost: the
state is the database's (the room's read mark and last emailed message), not the
queue's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale, gettext
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import and_, false, func, or_, select, update

from ..database import transaction
from ..extensions import db
from ..mail import MailRefused, deliver
from ..models import Attachment, ChatRoom, Message, Site, User, utcnow
from ..registry import current_registry

# Longer than an SMTP session may take: at most 8 steps of mail.SMTP_TIMEOUT each.
CLAIM_SECONDS = 120
SWEEP_BATCH = 200


@dataclass
class Outcome:
    """What a check did: "sent", or why not ("nothing", "early", "online", "off",
    "claimed")."""

    result: str
    message_ids: tuple[int, ...] = ()


def customer_email_due_at(room_id: int) -> None:
    """An agent's reply was stored in `room_id` (called after the commit): check it
    once the delay has passed."""
    jobs = current_app.extensions.get("chat_jobs")
    if jobs is not None:
        jobs.check_room.schedule(args=(room_id,), delay=current_app.config["CHAT_EMAIL_DELAY"])


def customer_left(room_id: int) -> None:
    """The customer's last socket closed: replies they have not seen may now be due."""
    customer_email_due_at(room_id)


def check_room(room_id: int) -> Outcome:
    """Email the customer of `room_id` what they have not seen, if it is due."""
    now = utcnow()
    config = current_app.config
    room = db.session.get(ChatRoom, room_id)
    if room is None:
        return Outcome("nothing")
    last_id = room.last_message_id or 0
    customer = room.customer
    if customer.emails_off_at is not None or not _has_address(customer):
        _record(room_id, last_id)  # nothing of this room is emailed: the sweep moves on
        return Outcome("off")
    if not _due(room).all():
        _record(room_id, last_id)  # the rest is seen, the customer's own, or automatic
        return Outcome("nothing")
    if customer.id in current_registry().online([customer.id]):
        return Outcome("online")  # the sweep looks again after they leave
    db.session.rollback()  # what follows reads after the claim
    mine = now + timedelta(seconds=CLAIM_SECONDS)  # the claim is also its owner's token
    claimed = db.session.execute(
        update(ChatRoom)
        .where(
            ChatRoom.id == room_id,
            or_(ChatRoom.email_claimed_until.is_(None), ChatRoom.email_claimed_until < now),
        )
        .values(email_claimed_until=mine)
    ).rowcount
    db.session.commit()
    if not claimed:
        return Outcome("claimed")
    try:
        room = db.session.get(ChatRoom, room_id, populate_existing=True)
        messages = _due(room).all()
        ids = tuple(m.id for m in messages)  # kept: the rollback below expires the rows
        if not messages or not _waited(ids[0], now - _delay(config)):
            _release(room_id, mine)
            return Outcome("nothing" if not messages else "early")
        email = compose(room, messages)
        db.session.rollback()  # no transaction stays open while SMTP talks
        deliver(config, email)
    except MailRefused as refused:  # for good (a bad address): never tried again
        current_app.logger.warning("email for room %s refused: %s", room_id, refused)
        _record(room_id, ids[-1], mine)
        return Outcome("refused", ids)
    except ValueError as bad:  # an address the email package cannot write
        current_app.logger.warning("email for room %s not written: %s", room_id, bad)
        _record(room_id, last_id, mine)
        return Outcome("refused")
    except BaseException:
        _release(room_id, mine)
        raise
    _record(room_id, ids[-1], mine)
    current_app.logger.info("emailed room %s messages %s", room_id, list(ids))
    return Outcome("sent", ids)


def _record(room_id: int, through: int, mine=None) -> None:
    """The room's emails cover `through` (never moved back), and the claim `mine`, if
    it is still this job's, is dropped."""
    db.session.rollback()
    with transaction() as session:
        session.execute(
            update(ChatRoom)
            .where(
                ChatRoom.id == room_id,
                or_(
                    ChatRoom.emailed_through_id.is_(None),
                    ChatRoom.emailed_through_id < through,
                ),
            )
            .values(emailed_through_id=through)
        )
        if mine is not None:
            session.execute(
                update(ChatRoom)
                .where(ChatRoom.id == room_id, ChatRoom.email_claimed_until == mine)
                .values(email_claimed_until=None)
            )


def sweep(limit: int = SWEEP_BATCH) -> list[int]:
    """Rooms with replies their customer has not seen and no email covered, not claimed
    by a live job, whose customer gets emails: each gets a check now. Their ids."""
    now = utcnow()
    rows = db.session.scalars(
        select(ChatRoom.id)
        .join(User, User.id == ChatRoom.customer_id)
        .where(
            ChatRoom.customer_unread > 0,
            ChatRoom.last_message_id > func.coalesce(ChatRoom.emailed_through_id, 0),
            or_(ChatRoom.email_claimed_until.is_(None), ChatRoom.email_claimed_until < now),
            User.emails_off_at.is_(None),
        )
        .order_by(ChatRoom.last_activity_at)
        .limit(limit)
    ).all()
    db.session.rollback()
    return list(rows)


def _due(room: ChatRoom):
    """The room's replies the customer has not seen and no email covered, oldest first."""
    from .availability import BOT_EMAIL

    after = func.coalesce(room.customer_read_id, 0), func.coalesce(room.emailed_through_id, 0)
    bot = select(User.id).where(User.email == BOT_EMAIL).scalar_subquery()
    return db.session.scalars(
        select(Message)
        .where(
            Message.room_id == room.id,
            Message.internal.is_(false()),
            Message.author_id != room.customer_id,
            Message.author_id != func.coalesce(bot, 0),  # the automatic reply is not news
            and_(Message.id > after[0], Message.id > after[1]),
        )
        .order_by(Message.id)
        .limit(50)
    )


def _release(room_id: int, mine) -> None:
    """Drop this job's claim (only if it is still this job's)."""
    db.session.rollback()
    with transaction() as session:
        session.execute(
            update(ChatRoom)
            .where(ChatRoom.id == room_id, ChatRoom.email_claimed_until == mine)
            .values(email_claimed_until=None)
        )


def _delay(config) -> timedelta:
    return timedelta(seconds=config["CHAT_EMAIL_DELAY"])


def _waited(message_id: int, cutoff) -> bool:
    """Whether the message was stored at or before `cutoff`."""
    found = db.session.scalar(
        select(Message.id).where(Message.id == message_id, Message.created_at <= cutoff)
    )
    return found is not None


def _has_address(user: User) -> bool:
    return "@" in (user.email or "") and not user.email.endswith(".invalid")


# --- the email -----------------------------------------------------------------------


def compose(room: ChatRoom, messages: list[Message]) -> EmailMessage:
    config = current_app.config
    customer = room.customer
    authors = {
        u.id: u.name
        for u in db.session.scalars(
            select(User).where(User.id.in_({m.author_id for m in messages}))
        )
    }
    files = {}
    if any(m.attachment_count for m in messages):
        for a in db.session.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_([m.id for m in messages]))
            .order_by(Attachment.message_id, Attachment.position)
        ):
            files.setdefault(a.message_id, []).append(a)
    base = config["PUBLIC_URL"]
    items = [
        {
            "author": authors.get(m.author_id, ""),
            "body": m.body,
            "at": m.created_at,
            "files": [
                {"name": a.name, "url": f"{base}/attachments/{a.id}"} for a in files.get(m.id, [])
            ],
        }
        for m in messages
    ]
    agent = items[-1]["author"]
    language = customer.locale if customer.locale in ("en", "ko") else "en"
    links = {
        "conversation": conversation_url(customer),
        # Jobs run outside any request: the paths are written out (app/mail/pages.py).
        "unsubscribe": f"{base}/email/unsubscribe/{unsubscribe_token(customer.id)}",
    }
    with force_locale(language):
        subject = gettext("%(agent)s replied to your message", agent=agent or "Support")
        context = {
            "customer": customer,
            "agent": agent,
            "items": items,
            "links": links,
            "lang": language,
            "subject": subject,
        }
        text = render_template("email/reply.txt", **context)
        html = render_template("email/reply.html", **context)
    email = EmailMessage()
    sender_name, sender_address = parseaddr(config["MAIL_FROM"])
    shown = f"{agent} ({sender_name})" if agent and sender_name else (agent or sender_name)
    email["From"] = str(Address(shown, addr_spec=sender_address))
    email["To"] = str(Address(customer.name, addr_spec=customer.email))
    email["Subject"] = subject
    email["Date"] = format_datetime(utcnow())
    domain = sender_address.rpartition("@")[2] or "localhost"
    # Stable: a retried email keeps its id, so a receiver can drop the second copy.
    email["Message-ID"] = f"<chat-{room.id}-{messages[-1].id}@{domain}>"
    if config["MAIL_INBOUND_DOMAIN"]:
        email["Reply-To"] = f"reply+{reply_token(room.id)}@{config['MAIL_INBOUND_DOMAIN']}"
    email["List-Unsubscribe"] = f"<{links['unsubscribe']}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: robots do not answer it
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    email["Content-Language"] = language  # after the parts: set_content drops Content-*
    return email


def conversation_url(customer: User) -> str:
    """Where the customer reads the conversation: the site they came from (its first
    origin), or our chat page."""
    if customer.site_id is not None:
        site = db.session.get(Site, customer.site_id)
        if site is not None and site.origin_list and site.removed_at is None:
            return site.origin_list[0]
    return current_app.config["PUBLIC_URL"] + "/chat"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="email-unsubscribe")


def unsubscribe_token(user_id: int) -> str:
    return _serializer().dumps(user_id)


def user_of_unsubscribe_token(token: str) -> int | None:
    try:
        value = _serializer().loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) else None


def reply_token(room_id: int) -> str:
    """`<room>-<20 hex digits of an HMAC>`: lower case only, as mail servers may fold an
    address's local part (checked by app/mail/inbound.py)."""
    from ..mail.inbound import token_of

    return f"{room_id}-{token_of(room_id, current_app.config['SECRET_KEY'])}"


def unsubscribe(user_id: int) -> bool:
    with transaction() as session:
        changed = session.execute(
            update(User)
            .where(User.id == user_id, User.emails_off_at.is_(None))
            .values(emails_off_at=utcnow())
        ).rowcount
    return bool(changed)
