"""Rate limits: how often a user may send messages and use every other socket event.

- `send_message`: CHAT_RATE_LIMIT per user (every call counts, whatever its outcome).
- Every other event: CHAT_EVENT_RATE_LIMIT per user and event (`history`, `list_rooms`,
  `mark_read`, `typing`, `set_status`), so no event is free to flood with.
- `typing` is also thinned before it is forwarded (`TypingGate`).

One process keeps the windows in memory; with several processes Redis keeps them (the
same interface, in redis_state.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from flask import current_app

from ..errors import RateLimited


class Limiter(Protocol):
    def hit(self, key: str, count: int | None = None, seconds: int | None = None) -> bool:
        """Count one attempt for `key`; False when it is over `count` in `seconds`
        (by default the limiter's own window)."""


class MemoryLimiter:
    def __init__(self, count: int, seconds: int, clock=time.monotonic) -> None:
        self.count, self.seconds, self.clock = count, seconds, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, count: int | None = None, seconds: int | None = None) -> bool:
        count, seconds = count or self.count, seconds or self.seconds
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - seconds:
                hits.popleft()
            hits.append(now)
            return len(hits) <= count


def _limiter() -> Limiter:
    return current_app.extensions["chat_limiter"]


def check_send_rate(user_id: int) -> None:
    """Count a send attempt; `rate_limited` when the user is over the limit."""
    if not _limiter().hit(f"send:{user_id}"):
        raise RateLimited("You are sending too fast; wait a few seconds.")


def check_event_rate(user_id: int, event: str) -> None:
    """Count one use of a socket event; `rate_limited` past the user's budget for it."""
    count, seconds = current_app.config["CHAT_EVENT_RATE_LIMIT"]
    if not _limiter().hit(f"event:{event}:{user_id}", count, seconds):
        raise RateLimited(f"Too many '{event}' requests; wait a few seconds.")


class TypingGate:
    """At most one typing state per user and room each `interval`, repeats dropped.

    A change that comes too soon is held and forwarded when the interval ends (only
    the latest one, and only if it still differs), so "stopped typing" always arrives.
    A repeat of the state last forwarded is dropped unless `repeat_after` has passed:
    the pages repeat "typing" every few seconds to keep the indicator alive.
    """

    def __init__(
        self,
        schedule: Callable[[float, Callable[[], None]], None],
        interval: float = 1.0,
        repeat_after: float = 2.0,
        clock=time.monotonic,
    ) -> None:
        self.schedule, self.clock = schedule, clock
        self.interval, self.repeat_after = interval, repeat_after
        self._lock = threading.Lock()
        self._last: dict[tuple[int, int], tuple[bool, float]] = {}  # key -> (state, when)
        self._held: dict[tuple[int, int], tuple[bool, Callable[[bool], None]]] = {}

    def offer(self, key: tuple[int, int], state: bool, forward: Callable[[bool], None]) -> bool:
        """Forward `state` now (True), hold it for later, or drop it (False)."""
        now = self.clock()
        with self._lock:
            if key in self._held:  # a change is already waiting: it becomes this one
                self._held[key] = (state, forward)
                return False
            last = self._last.get(key)
            if last is not None:
                last_state, when = last
                if state == last_state and now - when < self.repeat_after:
                    return False
                if now - when < self.interval:
                    self._held[key] = (state, forward)
                    self.schedule(when + self.interval - now, lambda: self._release(key))
                    return False
            self._last[key] = (state, now)
            self._forget_old(now)
        forward(state)
        return True

    def _release(self, key: tuple[int, int]) -> None:
        with self._lock:
            state, forward = self._held.pop(key)
            if self._last.get(key, (None, 0.0))[0] == state:
                return
            self._last[key] = (state, self.clock())
        forward(state)

    def _forget_old(self, now: float) -> None:
        if len(self._last) > 10_000:  # keep memory bounded: old entries decide nothing
            stale = [k for k, (_, when) in self._last.items() if now - when > 60]
            for k in stale:
                del self._last[k]
