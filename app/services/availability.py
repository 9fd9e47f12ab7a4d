"""Honest availability (issue 22): whether the team is in (business hours, and an
agent online), when it is back, how fast it typically answers, and the automatic
reply a customer gets when they write while the team is away.

The team's settings live in `team_settings`; each process keeps a copy
(`cached`) that the server's job runner refreshes every few seconds and a save
refreshes at once. The send path reads only that copy and the registry, never the
database, and queues the automatic reply as a job (app/jobs.py).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, timedelta

from flask import current_app
from sqlalchemy import false, select

from ..database import transaction
from ..errors import Forbidden, ValidationError
from ..extensions import db
from ..models import ChatRoom, Message, TeamSetting, User, utcnow
from ..registry import current_registry
from . import hours

AWAY_MESSAGE_MAX = 1000
REPLY_TIME_EVERY = 300.0  # seconds a computed "typically replies in" is kept
REPLY_TIME_DAYS = 7
REPLY_TIME_ROWS = 20_000  # the most messages one computation reads
BOT_EMAIL = "auto-reply@team.invalid"  # the automatic reply's author (no password)


@dataclass
class Settings:
    hours: hours.Schedule | None = None
    away_message: str | None = None
    auto_assign: bool = True  # new and reopened conversations are assigned automatically


def _store() -> dict:
    return current_app.extensions.setdefault(
        "chat_team_settings", {"settings": None, "reply": (None, -1e9)}
    )


def load() -> Settings:
    """The team's settings from the database (and the process's copy refreshed)."""
    rows = {r.key: json.loads(r.value) for r in db.session.scalars(select(TeamSetting))}
    raw_hours = rows.get("business_hours")
    settings = Settings(
        hours.parse(raw_hours) if raw_hours else None,
        rows.get("away_message") or None,
        rows.get("auto_assign") is not False,
    )
    _store()["settings"] = settings
    return settings


def fresh_settings() -> Settings:
    """The team's settings, read again if this process's copy is 5 s old."""
    return _fresh()


def cached() -> Settings:
    """The process's copy: never a database read (None loaded yet: no schedule)."""
    return _store()["settings"] or Settings()


def auto_reply_due() -> bool:
    """The admins wrote an away message, and the team is away (outside business hours,
    or no agent online): from the process's copy and the registry only (the send path
    asks)."""
    settings = cached()
    if not settings.away_message:
        return False  # no automatic reply unless the team wrote one
    if not hours.is_open(settings.hours, utcnow()):
        return True
    return not current_registry().any_online("admin")


# --- what customers are told --------------------------------------------------------


def _fresh() -> Settings:
    """The process's copy if it was read in the last SETTINGS_FRESH seconds, else the
    database's (a customer's question costs no query most of the time)."""
    store = _store()
    if store["settings"] is not None and time.monotonic() - store.get("read_at", -1e9) < 5:
        return store["settings"]
    settings = load()
    store["read_at"] = time.monotonic()
    return settings


def availability(user) -> dict:
    """The contract's Availability."""
    settings = _fresh()
    now = utcnow()
    is_open = hours.is_open(settings.hours, now)
    agents = current_registry().any_online("admin")
    change = hours.next_change(settings.hours, now)
    customer = db.session.get(User, user.id)
    by_email = (
        customer is not None
        and customer.emails_off_at is None
        and "@" in customer.email
        and not customer.email.endswith(".invalid")
    )
    return {
        "open": is_open,
        "agents_online": agents,
        "away": not (is_open and agents),
        "back_at": _iso(change) if not is_open and change else None,
        "closes_at": _iso(change) if is_open and change else None,
        "reply_minutes": _store()["reply"][0] if is_open and agents else None,
        "email": by_email,
    }


def _iso(moment) -> str:
    return _aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def refresh_reply_minutes() -> None:
    """Compute "typically replies in" again if the last is REPLY_TIME_EVERY old (the
    server's background tasks call this; a customer's question only reads it)."""
    if time.monotonic() - _store()["reply"][1] >= REPLY_TIME_EVERY:
        reply_minutes()


def reply_minutes(settings: Settings | None = None) -> int | None:
    """The median first response of the last 7 days (their latest REPLY_TIME_ROWS
    messages), in business minutes, rounded up, at least 1; None without any."""
    store = _store()
    store["reply"] = (store["reply"][0], time.monotonic())  # one computation at a time
    settings = settings or load()
    since = utcnow() - timedelta(days=REPLY_TIME_DAYS)
    bot = bot_id()
    latest = (
        select(Message.id)
        .where(Message.created_at >= since, Message.internal.is_(false()))
        .order_by(Message.id.desc())
        .limit(REPLY_TIME_ROWS)
        .subquery()
    )
    rows = db.session.execute(
        select(Message.room_id, Message.author_id, Message.created_at, ChatRoom.customer_id)
        .join(ChatRoom, ChatRoom.id == Message.room_id)
        .where(Message.id.in_(select(latest.c.id)))
        .order_by(Message.room_id, Message.id)
    ).all()
    waits, waiting, room = [], None, None
    for room_id, author, at_, customer in rows:
        if room_id != room:
            room, waiting = room_id, None
        if author == customer:
            waiting = waiting or at_
        elif author != bot and waiting is not None:
            waits.append(hours.open_seconds(settings.hours, _aware(waiting), _aware(at_)))
            waiting = None
    value = max(1, -(-int(statistics.median(waits)) // 60)) if waits else None
    store["reply"] = (value, time.monotonic())
    return value


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the team's settings (admins) ---------------------------------------------------


def team_settings(user, data: object) -> dict:
    if not user.is_staff:
        raise Forbidden("Only the support team sees its settings.")
    settings = load()
    return {
        "hours": hours.to_json(settings.hours) if settings.hours else None,
        "away_message": settings.away_message,
        "auto_assign": settings.auto_assign,
    }


def save_team_settings(user, data: object) -> dict:
    if not user.is_admin:
        raise Forbidden("Only the team's admins change its settings.")
    if not isinstance(data, dict):
        raise ValidationError("An object with hours and away_message.", {"hours": "missing"})
    raw = data.get("hours")
    try:
        schedule = hours.parse(raw) if raw is not None else None
    except hours.BadSchedule as bad:
        raise ValidationError(str(bad), {bad.field: bad.reason}) from None
    message = data.get("away_message")
    if message is not None and (not isinstance(message, str) or len(message) > AWAY_MESSAGE_MAX):
        raise ValidationError(
            f"away_message: at most {AWAY_MESSAGE_MAX} characters",
            {"away_message": "too long, or not text"},
        )
    message = (message or "").strip() or None
    values = {
        "business_hours": hours.to_json(schedule) if schedule else None,
        "away_message": message,
    }
    for key, field in (("business_hours", "hours"), ("away_message", "away_message")):
        if field not in data:  # a form that changes one setting leaves the others be
            del values[key]
    if "auto_assign" in data:  # left as it is when the form does not say
        if not isinstance(data["auto_assign"], bool):
            raise ValidationError("auto_assign: true or false", {"auto_assign": "not a boolean"})
        values["auto_assign"] = data["auto_assign"]
    with transaction() as session:
        for key, value in values.items():
            row = session.get(TeamSetting, key)
            if row is None:
                session.add(TeamSetting(key=key, value=json.dumps(value), updated_at=utcnow()))
            else:
                row.value, row.updated_at = json.dumps(value), utcnow()
    _store()["reply"] = (None, -1e9)  # hours changed: count again
    _store()["read_at"] = -1e9
    load()
    if values.get("auto_assign"):  # switched on: whoever waits is given out now
        from .assignment import assign_waiting

        assign_waiting()
    return team_settings(user, {})


# --- the automatic reply ----------------------------------------------------------


AWAY_JOB_EVERY = 60.0  # seconds: one automatic-reply job per room at most, per process
AWAY_JOBS_KEPT = 10_000


def reply_when_away(room_id: int, message_id: int) -> None:
    """Queue the automatic reply's job (after the commit of the customer's message).
    A room that writes on gets no second job within AWAY_JOB_EVERY: the reply comes
    once per away period anyway, and a burst should not cost a job a message."""
    jobs = current_app.extensions.get("chat_jobs")
    if jobs is None:
        return
    queued = current_app.extensions.setdefault("chat_away_jobs", {})
    now = time.monotonic()
    if now - queued.get(room_id, -AWAY_JOB_EVERY) < AWAY_JOB_EVERY:
        return
    if len(queued) >= AWAY_JOBS_KEPT:
        queued.clear()
    queued[room_id] = now
    jobs.auto_reply(room_id, message_id)


def team_wrote(room_id: int) -> None:
    """Someone on the team wrote in the room: its away period (if any) is over."""
    current_app.extensions.get("chat_away_jobs", {}).pop(room_id, None)


def bot_id() -> int | None:
    return db.session.scalar(select(User.id).where(User.email == BOT_EMAIL))


def _bot() -> User:
    bot = db.session.scalar(select(User).where(User.email == BOT_EMAIL))
    if bot is None:
        from .sites import NO_PASSWORD

        with transaction() as session:
            session.add(
                User(email=BOT_EMAIL, name="Support team", password_hash=NO_PASSWORD, role="admin")
            )
        bot = db.session.scalar(select(User).where(User.email == BOT_EMAIL))
    return bot


def auto_reply(room_id: int, message_id: int) -> str:
    """Answer a customer who wrote while the team is away, once per away period: not
    again until someone on the team has written in the room since. What was done."""
    settings = load()
    if not settings.away_message:
        return "off"  # the admins took their away message back
    if hours.is_open(settings.hours, utcnow()) and current_registry().any_online("admin"):
        return "in"  # the team is here after all
    room = db.session.get(ChatRoom, room_id)
    if room is None:
        return "gone"
    bot = _bot()
    last_bot = db.session.scalar(
        select(Message.id)
        .where(Message.room_id == room_id, Message.author_id == bot.id)
        .order_by(Message.id.desc())
        .limit(1)
    )
    if last_bot is not None:
        last_team = db.session.scalar(
            select(Message.id)
            .where(
                Message.room_id == room_id,
                Message.author_id.notin_([bot.id, room.customer_id]),
                Message.internal.is_(false()),
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
        if last_team is None or last_team < last_bot:
            return "already"
    body = settings.away_message
    from .messages import send_message

    db.session.rollback()
    send_message(bot, {"room_id": room_id, "body": body, "client_id": f"away-{message_id}"})
    return "sent"
