"""Redis connections for several processes acting as one: bounded, and waited for.

redis-py's default pool opens up to 100 connections and then fails at once ("Too many
connections"). A thousand sockets closing together (a proxy restart, a deploy) start a
thousand registry updates at the same moment, and a process past its capacity has as
many emits waiting to publish: every one past the hundredth failed, and a socket's
bookkeeping or a broadcast was lost. A blocking pool of REDIS_POOL_SIZE connections
makes them take turns (each holds a connection for one round trip) and gives up only
after REDIS_POOL_TIMEOUT seconds. Socket.IO's own publishes take turns the same way
(services/events.py, `publish_in_turns`).
"""

from __future__ import annotations

import redis


def bounded_client(url: str, size: int, timeout: float, **options) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=timeout, **options
    )
    return redis.Redis(connection_pool=pool)
