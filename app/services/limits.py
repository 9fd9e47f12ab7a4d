"""Rate limits: how many messages a user may send in a sliding window.

Every `send_message` call counts, whatever its outcome. One process keeps the windows
in memory; with several processes a shared store must keep them (same interface).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

from flask import current_app

from ..errors import RateLimited


class Limiter(Protocol):
    def hit(self, key: str) -> bool:
        """Count one attempt for `key`; False when it is over the limit."""


class MemoryLimiter:
    def __init__(self, count: int, seconds: int, clock=time.monotonic) -> None:
        self.count, self.seconds, self.clock = count, seconds, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            hits.append(now)
            return len(hits) <= self.count


def check_send_rate(user_id: int) -> None:
    """Count a send attempt; `rate_limited` when the user is over the limit."""
    limiter: Limiter = current_app.extensions["chat_limiter"]
    if not limiter.hit(f"send:{user_id}"):
        raise RateLimited("You are sending too fast; wait a few seconds.")
