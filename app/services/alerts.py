"""Agents hear of waiting customers by email (issue 22).

A customer's message no agent has read, older than CHAT_EMAIL_DELAY, while no agent
has a socket open, is emailed to every admin who has not switched these alerts off.
Like Crisp, one email covers a burst: every conversation that started waiting since the
last alert, with the customer's unread words. The sweep (app/jobs.py) finds such rooms;
a job claims them (one conditional UPDATE each, as for customers' emails), sends, then
records the last message each alert covered.
"""

from __future__ import annotations

from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale, ngettext
from pydantic import StrictBool
from sqlalchemy import false, func, or_, select, update

from ..database import transaction
from ..errors import Forbidden
from ..extensions import db
from ..mail import MailRefused, MailUnavailable, deliver
from ..models import STAFF_ROLES, ChatRoom, Message, User, utcnow
from ..registry import current_registry
from .schemas import Payload, parse

CLAIM_SECONDS = 120  # as services/notify.py
SHOWN_PER_ROOM = 3  # the customer's last unread messages quoted in the alert


class SetAlertEmails(Payload):
    on: StrictBool


def set_alert_emails(user, data: object) -> dict:
    """An agent switches their own waiting-customer emails on or off."""
    if not user.is_staff:
        raise Forbidden("Only the support team gets these emails.")
    form = parse(SetAlertEmails, data)
    with transaction() as session:
        session.execute(update(User).where(User.id == user.id).values(alert_emails_off=not form.on))
    return {"on": form.on}


def due_rooms(limit: int = 200) -> list[int]:
    """Rooms with customer messages the agents have not read nor been alerted to, and
    no live claim: candidates for an alert (the job checks the delay)."""
    now = utcnow()
    rows = db.session.scalars(
        select(ChatRoom.id)
        .where(
            ChatRoom.admin_unread > 0,
            ChatRoom.last_message_id > func.coalesce(ChatRoom.agents_alerted_through_id, 0),
            or_(ChatRoom.agents_claimed_until.is_(None), ChatRoom.agents_claimed_until < now),
        )
        .order_by(ChatRoom.last_activity_at)
        .limit(limit)
    ).all()
    db.session.rollback()
    return list(rows)


def alert_agents(room_ids: list[int]) -> str:
    """Email the agents about the rooms of `room_ids` whose customers wait. What was
    done: "sent", "online", "nothing" or "nobody" (every agent switched them off)."""
    if not room_ids:
        return "nothing"
    if current_registry().any_online("admin"):
        return "online"  # an agent is here: the inbox tells them
    now = utcnow()
    cutoff = now - timedelta(seconds=current_app.config["CHAT_EMAIL_DELAY"])
    mine = now + timedelta(seconds=CLAIM_SECONDS)  # the claim is also its owner's token
    claimed = list(
        db.session.scalars(  # one statement for all: no two jobs lock rooms in turn
            update(ChatRoom)
            .where(
                ChatRoom.id.in_(room_ids),
                or_(ChatRoom.agents_claimed_until.is_(None), ChatRoom.agents_claimed_until < now),
            )
            .values(agents_claimed_until=mine)
            .returning(ChatRoom.id)
        )
    )
    db.session.commit()
    try:
        found = {room_id: _waiting(room_id, cutoff) for room_id in claimed}
        waiting = [w for w in found.values() if w and w["due"]]
        agents = db.session.scalars(
            select(User).where(
                User.role.in_(STAFF_ROLES),
                User.deactivated_at.is_(None),
                User.alert_emails_off.is_(false()),
            )
        ).all()
        agents = [a for a in agents if "@" in a.email and not a.email.endswith(".invalid")]
        emails = [_compose(group, waiting) for group in _by_language(agents)] if waiting else []
        db.session.rollback()
        sent = failed = 0
        for email in emails:
            try:
                deliver(current_app.config, email)
                sent += 1
            except (MailUnavailable, MailRefused):
                if not sent and email is emails[-1]:
                    raise  # nothing went out: the job is tried again
                failed += 1
                current_app.logger.exception("an agents' alert was not sent")
    except BaseException:
        _finish(claimed, {}, mine)
        raise
    # Rooms with nothing to tell are done up to what they hold; those told, up to the
    # messages the alert covered.
    through = {r: w["last"] for r, w in found.items() if w is not None and not w["due"]}
    through |= {r: 0 for r, w in found.items() if w is None}
    through |= {w["room_id"]: w["through"] for w in waiting}
    _finish(claimed, through, mine)
    if not waiting:
        return "nothing"
    return "sent" if emails else "nobody"


def _finish(claimed: list[int], through: dict[int, int], mine) -> None:
    """Record what each room's alerts now cover (never moved back), and drop this job's
    claims."""
    db.session.rollback()
    with transaction() as session:
        for room_id, last in through.items():
            if last:
                session.execute(
                    update(ChatRoom)
                    .where(
                        ChatRoom.id == room_id,
                        or_(
                            ChatRoom.agents_alerted_through_id.is_(None),
                            ChatRoom.agents_alerted_through_id < last,
                        ),
                    )
                    .values(agents_alerted_through_id=last)
                )
        if claimed:
            session.execute(
                update(ChatRoom)
                .where(ChatRoom.id.in_(claimed), ChatRoom.agents_claimed_until == mine)
                .values(agents_claimed_until=None)
            )


def _waiting(room_id: int, cutoff) -> dict | None:
    """What the room's customer wrote that no agent has read nor been alerted to:
    `due` when the oldest of it has waited the delay; `last`, the room's last message
    (what a room with nothing to tell is done up to). None for a room that is gone."""
    room = db.session.get(ChatRoom, room_id, populate_existing=True)
    if room is None:
        return None
    last = room.last_message_id or 0
    after = max(room.admin_read_id or 0, room.agents_alerted_through_id or 0)
    unread = db.session.scalars(
        select(Message)
        .where(
            Message.room_id == room_id,
            Message.author_id == room.customer_id,
            Message.internal.is_(false()),
            Message.id > after,
        )
        .order_by(Message.id)
    ).all()
    if not unread:
        return {"room_id": room_id, "due": False, "last": last}
    oldest_waited = db.session.scalar(
        select(Message.id).where(Message.id == unread[0].id, Message.created_at <= cutoff)
    )
    if oldest_waited is None:
        return {"room_id": room_id, "due": False, "last": 0}  # early: not done yet
    return {
        "room_id": room_id,
        "due": True,
        "last": last,
        "through": unread[-1].id,
        "customer": room.customer.name,
        "messages": [m.body or "📎" for m in unread[-SHOWN_PER_ROOM:]],
        "count": len(unread),
    }


def _by_language(agents: list[User]) -> list[tuple[str, list[User]]]:
    groups: dict[str, list[User]] = {}
    for agent in agents:
        groups.setdefault(agent.locale if agent.locale in ("en", "ko") else "en", []).append(agent)
    return sorted(groups.items())


def _compose(group: tuple[str, list[User]], waiting: list[dict]) -> EmailMessage:
    language, agents = group
    config = current_app.config
    with force_locale(language):
        subject = ngettext(
            "%(num)d customer is waiting for an answer",
            "%(num)d customers are waiting for an answer",
            len(waiting),
        )
        context = {
            "waiting": waiting,
            "inbox": config["PUBLIC_URL"] + "/admin",
            "lang": language,
            "subject": subject,
        }
        text = render_template("email/alert.txt", **context)
        html = render_template("email/alert.html", **context)
    email = EmailMessage()
    name, sender = parseaddr(config["MAIL_FROM"])
    email["From"] = str(Address(name, addr_spec=sender))
    email["To"] = ", ".join(str(Address(a.name, addr_spec=a.email)) for a in agents)
    email["Subject"] = subject
    email["Date"] = format_datetime(utcnow())
    domain = sender.rpartition("@")[2] or "localhost"
    last = max(w["through"] for w in waiting)
    email["Message-ID"] = f"<alert-{language}-{last}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    email["Content-Language"] = language
    return email
