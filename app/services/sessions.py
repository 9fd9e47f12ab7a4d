"""Sessions that end: tokens revoked at logout, and sockets whose token has ended."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import delete, select

from ..extensions import db
from ..models import RevokedToken, utcnow
from ..registry import current_registry
from . import events
from .transaction import transaction


def revoke_token(claims: dict) -> None:
    """Refuse this token from now on, everywhere, and close the sockets that use it."""
    jti, user_id = claims["jti"], int(claims["sub"])
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    with transaction() as session:
        session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
        if session.get(RevokedToken, jti) is None:
            session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires))
    end_sockets_of_token(user_id, jti)


def is_revoked(jti: str | None) -> bool:
    if not jti:
        return False
    return db.session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None


def end_sockets_of_token(user_id: int, jti: str) -> None:
    registry = current_registry()
    for sid in registry.sids_of(user_id):
        conn = registry.get(sid)
        if conn is not None and conn.token_jti == jti:
            events.session_expired(sid)


def expire_due_sockets(now: float | None = None) -> int:
    """Close this process's sockets whose token has expired; returns how many."""
    now = time.time() if now is None else now
    due = [c for c in current_registry().local_connections() if c.token_exp and c.token_exp <= now]
    for conn in due:
        events.session_expired(conn.sid)
    return len(due)
