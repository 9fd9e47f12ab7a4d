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
from ..mail import deliver
from ..models import ChatRoom, Message, User, utcnow
from ..registry import current_registry
from .schemas import Payload, parse

CLAIM_SECONDS = 60
SHOWN_PER_ROOM = 3  # the customer's last unread messages quoted in the alert


class SetAlertEmails(Payload):
    on: StrictBool


def set_alert_emails(user, data: object) -> dict:
    """An agent switches their own waiting-customer emails on or off."""
    if not user.is_admin:
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
    claimed = []
    for room_id in room_ids:
        done = db.session.execute(
            update(ChatRoom)
            .where(
                ChatRoom.id == room_id,
                or_(ChatRoom.agents_claimed_until.is_(None), ChatRoom.agents_claimed_until < now),
            )
            .values(agents_claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        ).rowcount
        if done:
            claimed.append(room_id)
    db.session.commit()
    try:
        waiting = [w for w in (_waiting(room_id, cutoff) for room_id in claimed) if w]
        agents = db.session.scalars(
            select(User).where(User.role == "admin", User.alert_emails_off.is_(false()))
        ).all()
        agents = [a for a in agents if "@" in a.email and not a.email.endswith(".invalid")]
        if not waiting or not agents:
            _release(claimed)
            return "nothing" if not waiting else "nobody"
        emails = [_compose(group, waiting) for group in _by_language(agents)]
        db.session.rollback()
        for email in emails:
            deliver(current_app.config, email)
    except BaseException:
        _release(claimed)
        raise
    with transaction() as session:
        for item in waiting:
            session.execute(
                update(ChatRoom)
                .where(ChatRoom.id == item["room_id"])
                .values(agents_alerted_through_id=item["through"], agents_claimed_until=None)
            )
    _release([r for r in claimed if r not in {w["room_id"] for w in waiting}])
    return "sent"


def _waiting(room_id: int, cutoff) -> dict | None:
    room = db.session.get(ChatRoom, room_id, populate_existing=True)
    if room is None:
        return None
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
        return None
    oldest_waited = db.session.scalar(
        select(Message.id).where(Message.id == unread[0].id, Message.created_at <= cutoff)
    )
    if oldest_waited is None:
        return None
    return {
        "room_id": room_id,
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


def _release(room_ids: list[int]) -> None:
    if not room_ids:
        return
    db.session.rollback()
    with transaction() as session:
        session.execute(
            update(ChatRoom).where(ChatRoom.id.in_(room_ids)).values(agents_claimed_until=None)
        )
