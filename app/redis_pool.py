"""Redis connections for several processes acting as one: bounded, and waited for.

redis-py's default pool opens up to 100 connections and then fails at once ("Too many
connections"). A thousand sockets closing together (a proxy restart, a deploy) start a
thousand registry updates at the same moment, and a process past its capacity has as
many emits waiting to publish: every one past the hundredth failed, and a socket's
bookkeeping or a broadcast was lost. A blocking pool of REDIS_POOL_SIZE connections
makes them take turns (each holds a connection for one round trip) and gives up only
after REDIS_POOL_TIMEOUT seconds.
"""

from __future__ import annotations

import redis
import socketio


def bounded_client(url: str, size: int, timeout: float, **options) -> redis.Redis:
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=timeout, **options
    )
    return redis.Redis(connection_pool=pool)


class BoundedRedisManager(socketio.RedisManager):
    """python-socketio's Redis message queue, publishing through a bounded pool.

    The listener's subscription holds one of the pool's connections for as long as it
    lasts; publishes share the others. After a failure python-socketio connects again
    through this same method, so a fresh pool replaces a broken one."""

    def __init__(self, url: str, size: int, timeout: float, **kwargs) -> None:
        self._pool_size, self._pool_timeout = size + 1, timeout  # +1: the subscription
        super().__init__(url, **kwargs)

    def _redis_connect(self) -> None:
        self.redis = bounded_client(self.redis_url, self._pool_size, self._pool_timeout)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True
