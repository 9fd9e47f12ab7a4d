"""Shared state for several server processes, kept in Redis (used when REDIS_URL is set).

`RedisRegistry` is the connection registry and `RedisLimiter` the rate limiter, with
the same methods as their in-memory twins. Socket.IO's own message queue (rooms and
emits across processes) is python-socketio's Redis manager, set up in `create_app`.

A process that dies without cleaning up would leave its sockets "online" for ever, so
every process keeps a heartbeat key alive and reaps the sockets of processes whose
heartbeat has stopped (`reap_dead_servers`, run by the background task).
"""

from __future__ import annotations

import time
import uuid

import redis

from .registry import Change, Connection

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


class RedisRegistry:
    def __init__(self, client: redis.Redis, server_id: str | None = None) -> None:
        self.redis = client
        self.server_id = server_id or uuid.uuid4().hex
        self._local: dict[str, Connection] = {}

    def heartbeat(self) -> None:
        pipe = self.redis.pipeline()
        pipe.sadd(SERVERS, self.server_id)
        pipe.set(_alive_key(self.server_id), "1", ex=HEARTBEAT_SECONDS)
        pipe.execute()

    def add(self, conn: Connection) -> Change:
        fields = {
            "user_id": conn.user_id,
            "role": conn.role,
            "server": self.server_id,
            "jti": conn.token_jti or "",
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
        self._local[conn.sid] = conn
        return Change(user=bool(added_user) and users == 1, role=bool(added_role) and roles == 1)

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
            sid, int(data["user_id"]), data["role"], data["jti"] or None, int(data["exp"]) or None
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
            if server_id == self.server_id or self.redis.exists(_alive_key(server_id)):
                continue
            for sid in self.redis.smembers(_server_key(server_id)):
                data = self.redis.hgetall(_conn_key(sid))
                if not data:
                    self.redis.srem(_server_key(server_id), sid)
                    continue
                conn = Connection(sid, int(data["user_id"]), data["role"], None, None)
                gone.append((conn, self._forget(server_id, sid, conn.user_id, conn.role)))
            self.redis.srem(SERVERS, server_id)
        return gone


class RedisLimiter:
    """A sliding window per key in a sorted set, shared by every process."""

    def __init__(self, client: redis.Redis, count: int, seconds: int) -> None:
        self.redis, self.count, self.seconds = client, count, seconds

    def hit(self, key: str) -> bool:
        now = time.time()
        name = f"{PREFIX}rate:{key}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(name, 0, now - self.seconds)
        pipe.zadd(name, {uuid.uuid4().hex: now})
        pipe.zcard(name)
        pipe.expire(name, self.seconds + 1)
        _, _, hits, _ = pipe.execute()
        return hits <= self.count
