"""Who is connected: the sockets of each user, behind a small interface.

One process keeps this in memory (`MemoryRegistry`). A Redis-backed registry with the
same methods replaces it when several processes must act as one; nothing else changes.
The app's registry is `current_registry()`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from flask import current_app


@dataclass(frozen=True)
class Connection:
    """One socket's identity, fixed when it connected."""

    sid: str
    user_id: int
    role: str
    token_jti: str | None
    token_exp: int | None


class ConnectionRegistry(Protocol):
    def add(self, conn: Connection) -> bool:
        """Remember a socket; True when it is the user's first."""

    def remove(self, sid: str) -> tuple[Connection | None, bool]:
        """Forget a socket; returns it and whether it was its user's last."""

    def get(self, sid: str) -> Connection | None: ...

    def sids_of(self, user_id: int) -> set[str]: ...

    def online(self, user_ids: list[int]) -> set[int]:
        """Those of `user_ids` that have at least one socket."""

    def any_online(self, role: str) -> bool: ...


class MemoryRegistry:
    """A registry for one process. The lock keeps it right under threads too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, Connection] = {}
        self._by_user: dict[int, set[str]] = {}

    def add(self, conn: Connection) -> bool:
        with self._lock:
            self._by_sid[conn.sid] = conn
            sids = self._by_user.setdefault(conn.user_id, set())
            sids.add(conn.sid)
            return len(sids) == 1

    def remove(self, sid: str) -> tuple[Connection | None, bool]:
        with self._lock:
            conn = self._by_sid.pop(sid, None)
            if conn is None:
                return None, False
            sids = self._by_user.get(conn.user_id, set())
            sids.discard(sid)
            if not sids:
                self._by_user.pop(conn.user_id, None)
            return conn, not sids

    def get(self, sid: str) -> Connection | None:
        return self._by_sid.get(sid)

    def sids_of(self, user_id: int) -> set[str]:
        with self._lock:
            return set(self._by_user.get(user_id, ()))

    def online(self, user_ids: list[int]) -> set[int]:
        with self._lock:
            return {uid for uid in user_ids if self._by_user.get(uid)}

    def any_online(self, role: str) -> bool:
        with self._lock:
            return any(c.role == role for c in self._by_sid.values())


def current_registry() -> ConnectionRegistry:
    return current_app.extensions["chat_registry"]
