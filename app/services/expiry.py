"""Sockets whose session has ended: their token expired, or its family was revoked."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import select

from ..extensions import db
from ..models import TokenFamily
from ..registry import current_registry
from . import events


def end_sockets_of_family(user_id: int, family: str) -> int:
    """Close every socket opened with a token of `family`; returns how many were told.

    The registry knows the sockets of every process (with Redis). This process's own
    sockets are checked as well, so a socket the shared registry lost (a process
    reaped after a stalled heartbeat) is still closed here.
    """
    registry = current_registry()
    doomed = {
        sid
        for sid in registry.sids_of(user_id)
        if (conn := registry.get(sid)) is not None and conn.family == family
    }
    doomed |= {
        c.sid for c in registry.local_connections() if c.user_id == user_id and c.family == family
    }
    for sid in doomed:
        events.session_expired(sid)
    return len(doomed)


def end_revoked_sockets(since: datetime) -> int:
    """Close this process's sockets whose login session was ended at or after `since`,
    by whichever process ended it: a command (`flask sites remove`), or another server
    without Redis to tell this one. One indexed query, only while sockets are open."""
    local = current_registry().local_connections()
    if not local:
        return 0
    revoked = set(
        db.session.execute(select(TokenFamily.id).where(TokenFamily.revoked_at >= since)).scalars()
    )
    db.session.rollback()  # no connection held between ticks
    doomed = [c for c in local if c.family in revoked]
    for conn in doomed:
        events.session_expired(conn.sid)
    return len(doomed)


def expire_due_sockets(now: float | None = None) -> int:
    """Close this process's sockets whose token has expired; returns how many."""
    now = time.time() if now is None else now
    due = [c for c in current_registry().local_connections() if c.token_exp and c.token_exp <= now]
    for conn in due:
        events.session_expired(conn.sid)
    return len(due)
