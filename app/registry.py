"""Who is connected: the sockets of each user, behind a small interface.

One process keeps this in memory (`MemoryRegistry`). A Redis-backed registry with the
same methods replaces it when several processes must act as one; nothing else changes.
The app's registry is `current_registry()`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app


@dataclass(frozen=True)
class Identity:
    """Who a socket belongs to, read once at connect. Every event uses it as its user:
    no event looks the user up again (a logout or an ended token closes the socket)."""

    id: int
    name: str
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Connection:
    """One socket's identity, fixed when it connected."""

    sid: str
    user_id: int
    role: str
    family: str | None  # the token family it was opened with (services/tokens.py)
    token_exp: int | None
    # Known for this process's own sockets; None for another process's (read from Redis).
    identity: Identity | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Change:
    """What a socket's arrival or departure changed: its user came online (or went
    offline), and its role went from no socket to one (or from some to none)."""

    user: bool = False
    role: bool = False


class TooManySockets(Exception):
    """The user already has as many sockets as one user may have."""


class ConnectionRegistry(Protocol):
    def add(self, conn: Connection, limit: int | None = None) -> Change:
        """Remember a socket; says whether its user and its role just came online.
        Raises `TooManySockets` (and remembers nothing) past `limit` sockets per user."""

    def remove(self, sid: str) -> tuple[Connection | None, Change]:
        """Forget a socket; returns it and whether its user and role just went offline."""

    def get(self, sid: str) -> Connection | None: ...

    def sids_of(self, user_id: int) -> set[str]: ...

    def online(self, user_ids: list[int]) -> set[int]:
        """Those of `user_ids` that have at least one socket."""

    def any_online(self, role: str) -> bool: ...

    def local_connections(self) -> list[Connection]:
        """The sockets connected to this process (for expiry and shutdown)."""


class MemoryRegistry:
    """A registry for one process. The lock keeps it right under threads too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, Connection] = {}
        self._by_user: dict[int, set[str]] = {}
        self._by_role: dict[str, int] = {}

    def add(self, conn: Connection, limit: int | None = None) -> Change:
        with self._lock:
            if conn.sid in self._by_sid:
                return Change()
            if limit is not None and len(self._by_user.get(conn.user_id, ())) >= limit:
                raise TooManySockets(limit)
            self._by_sid[conn.sid] = conn
            sids = self._by_user.setdefault(conn.user_id, set())
            sids.add(conn.sid)
            self._by_role[conn.role] = self._by_role.get(conn.role, 0) + 1
            return Change(user=len(sids) == 1, role=self._by_role[conn.role] == 1)

    def remove(self, sid: str) -> tuple[Connection | None, Change]:
        with self._lock:
            conn = self._by_sid.pop(sid, None)
            if conn is None:
                return None, Change()
            sids = self._by_user.get(conn.user_id, set())
            sids.discard(sid)
            if not sids:
                self._by_user.pop(conn.user_id, None)
            self._by_role[conn.role] -= 1
            return conn, Change(user=not sids, role=self._by_role[conn.role] == 0)

    def local_connections(self) -> list[Connection]:
        with self._lock:
            return list(self._by_sid.values())

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
            return self._by_role.get(role, 0) > 0


def current_registry() -> ConnectionRegistry:
    return current_app.extensions["chat_registry"]
