"""Who is connected: the sockets of each user, behind a small interface.

One process keeps this in memory (`MemoryRegistry`). `RedisRegistry`, with the same
methods, replaces it when several processes must act as one (REDIS_URL); nothing else
changes. The app's registry is `current_registry()`. (Socket.IO's own message queue,
rooms and emits across processes, is python-socketio's Redis manager: `create_app`.)

A process that dies without cleaning up would leave its sockets "online" for ever, so
every process keeps a heartbeat key alive and reaps the sockets of processes whose
heartbeat has stopped (`reap_dead_servers`, run by the background task).

A process that was only stalled (a long pause, a frozen VM) may be reaped while its
sockets are still open. Its next heartbeat finds its key gone and registers every
local socket again, so logout and presence find them once more. The reap is one Lua
script: it checks the heartbeat and forgets the sockets atomically, so a heartbeat
either comes before it (nothing is reaped) or after it (and re-registers).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import redis
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

    @property
    def is_staff(self) -> bool:
        return self.role in ("admin", "agent")


@dataclass(frozen=True)
class Connection:
    """One socket's identity, fixed when it connected."""

    sid: str
    user_id: int
    # The side, not the user's role: "admin" for every member of the support team
    # (admins and agents alike: `any_online("admin")` is "the team is online"), else
    # "customer".
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


# --- several processes: Redis ------------------------------------------------------------

PREFIX = "chat:"
HEARTBEAT_SECONDS = 15


def _conn_key(sid: str) -> str:
    return f"{PREFIX}conn:{sid}"


def _user_key(user_id: int) -> str:
    return f"{PREFIX}user:{user_id}"


def _role_key(role: str) -> str:
    return f"{PREFIX}role:{role}"


def _server_key(server_id: str) -> str:
    return f"{PREFIX}server:{server_id}"


def _alive_key(server_id: str) -> str:
    return f"{PREFIX}alive:{server_id}"


SERVERS = f"{PREFIX}servers"

# KEYS: none (the keys are derived from the prefix and server id, single-node Redis).
# ARGV: prefix, server id. Returns [sid, user_id, role, users left, role left] per socket.
REAP_SCRIPT = """
local prefix, server = ARGV[1], ARGV[2]
if redis.call('EXISTS', prefix .. 'alive:' .. server) == 1 then return {} end
local gone = {}
for _, sid in ipairs(redis.call('SMEMBERS', prefix .. 'server:' .. server)) do
  local conn = prefix .. 'conn:' .. sid
  local user_id = redis.call('HGET', conn, 'user_id')
  local role = redis.call('HGET', conn, 'role')
  if user_id and role then
    redis.call('DEL', conn)
    local in_user = redis.call('SREM', prefix .. 'user:' .. user_id, sid)
    local in_role = redis.call('SREM', prefix .. 'role:' .. role, sid)
    table.insert(gone, {sid, user_id, role,
      in_user == 1 and redis.call('SCARD', prefix .. 'user:' .. user_id) == 0 and 1 or 0,
      in_role == 1 and redis.call('SCARD', prefix .. 'role:' .. role) == 0 and 1 or 0})
  end
end
redis.call('DEL', prefix .. 'server:' .. server)
redis.call('SREM', prefix .. 'servers', server)
return gone
"""


class RedisRegistry:
    def __init__(self, client: redis.Redis, server_id: str | None = None) -> None:
        self.redis = client
        self.server_id = server_id or uuid.uuid4().hex
        self._local: dict[str, Connection] = {}
        self._reap = self.redis.register_script(REAP_SCRIPT)

    def heartbeat(self) -> list[tuple[Connection, Change]]:
        """Keep this process alive; if its key had lapsed (it may have been reaped),
        register its sockets again. Returns the sockets whose comeback changed presence."""
        pipe = self.redis.pipeline()
        pipe.sadd(SERVERS, self.server_id)
        pipe.set(_alive_key(self.server_id), "1", ex=HEARTBEAT_SECONDS, get=True)
        _, was_alive = pipe.execute()
        if was_alive:
            return []
        return self.register_again()

    def register_again(self) -> list[tuple[Connection, Change]]:
        back = []
        for conn in list(self._local.values()):
            change = self._store(conn)
            if change.user or change.role:
                back.append((conn, change))
        return back

    def add(self, conn: Connection, limit: int | None = None) -> Change:
        users, change = self._store(conn, count=True)
        if limit is not None and users > limit:  # counted after adding: racing adds see it
            self._forget(self.server_id, conn.sid, conn.user_id, conn.role)
            raise TooManySockets(limit)
        self._local[conn.sid] = conn
        return change

    def _store(self, conn: Connection, count: bool = False):
        fields = {
            "user_id": conn.user_id,
            "role": conn.role,
            "server": self.server_id,
            "family": conn.family or "",
            "exp": conn.token_exp or 0,
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(SERVERS, self.server_id)
        pipe.set(_alive_key(self.server_id), "1", ex=HEARTBEAT_SECONDS)
        pipe.hset(_conn_key(conn.sid), mapping=fields)
        pipe.sadd(_server_key(self.server_id), conn.sid)
        pipe.sadd(_user_key(conn.user_id), conn.sid)
        pipe.sadd(_role_key(conn.role), conn.sid)
        pipe.scard(_user_key(conn.user_id))
        pipe.scard(_role_key(conn.role))
        *_, added_user, added_role, users, roles = pipe.execute()
        change = Change(user=bool(added_user) and users == 1, role=bool(added_role) and roles == 1)
        return (users, change) if count else change

    def remove(self, sid: str) -> tuple[Connection | None, Change]:
        conn = self._local.pop(sid, None)
        if conn is None:
            return None, Change()
        return conn, self._forget(self.server_id, sid, conn.user_id, conn.role)

    def _forget(self, server_id: str, sid: str, user_id: int, role: str) -> Change:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(_conn_key(sid))
        pipe.srem(_server_key(server_id), sid)
        pipe.srem(_user_key(user_id), sid)
        pipe.srem(_role_key(role), sid)
        pipe.scard(_user_key(user_id))
        pipe.scard(_role_key(role))
        *_, removed_user, removed_role, users, roles = pipe.execute()
        return Change(
            user=bool(removed_user) and users == 0, role=bool(removed_role) and roles == 0
        )

    def get(self, sid: str) -> Connection | None:
        if sid in self._local:
            return self._local[sid]
        data = self.redis.hgetall(_conn_key(sid))
        if not data:
            return None
        return Connection(
            sid,
            int(data["user_id"]),
            data["role"],
            data.get("family") or None,
            int(data["exp"]) or None,
        )

    def sids_of(self, user_id: int) -> set[str]:
        return set(self.redis.smembers(_user_key(user_id)))

    def online(self, user_ids: list[int]) -> set[int]:
        if not user_ids:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.scard(_user_key(user_id))
        return {uid for uid, n in zip(user_ids, pipe.execute(), strict=True) if n}

    def any_online(self, role: str) -> bool:
        return self.redis.scard(_role_key(role)) > 0

    def local_connections(self) -> list[Connection]:
        return list(self._local.values())

    def reap_dead_servers(self) -> list[tuple[Connection, Change]]:
        """Forget the sockets of processes whose heartbeat stopped; returns what changed."""
        gone = []
        for server_id in self.redis.smembers(SERVERS):
            if server_id == self.server_id:
                continue
            for sid, user_id, role, user_left, role_left in self._reap(args=[PREFIX, server_id]):
                conn = Connection(sid, int(user_id), role, None, None)
                gone.append((conn, Change(user=bool(user_left), role=bool(role_left))))
        return gone


# Redis connections for several processes acting as one: bounded, and waited for.
#
# redis-py's default pool opens up to 100 connections and then fails at once ("Too many
# connections"). A thousand sockets closing together (a proxy restart, a deploy) start a
# thousand registry updates at the same moment, and a process past its capacity has as
# many emits waiting to publish: every one past the hundredth failed, and a socket's
# bookkeeping or a broadcast was lost. A blocking pool of REDIS_POOL_SIZE connections
# makes them take turns (each holds a connection for one round trip) and gives up only
# after REDIS_POOL_TIMEOUT seconds. Socket.IO's own publishes take turns the same way
# (services/events.py, `publish_in_turns`).
def bounded_client(url: str, size: int, timeout: float, **options) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=timeout, **options
    )
    return redis.Redis(connection_pool=pool)
