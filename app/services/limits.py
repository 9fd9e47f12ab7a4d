"""Rate limits: how often a user may send messages and use every other socket event.

- `send_message`: CHAT_RATE_LIMIT per user.
- Every other event: CHAT_EVENT_RATE_LIMIT per user and event (`history`, `list_rooms`,
  `mark_read`, `typing`, `set_status`), so no event is free to flood with.
- `typing` is also thinned before it is forwarded (`TypingGate`).

A moving window per key; an attempt over the limit is not counted, so a client that
waits out the window may send again. With REDIS_URL the windows are the HTTP throttles'
own limiter (Flask-Limiter, and the `limits` library beneath it, in Redis), shared by
every process. In one process they are `MemoryWindows`: `limits`' in-memory storage
walks every key from a new thread every 10 ms, which under eventlet or gevent cost
0.22-0.24 ms of CPU per check and took the server from 0.55 to 0.92 cores at 500
messages a second (docs/BENCHMARKS.md, issue 19).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from flask import current_app
from limits import RateLimitItemPerSecond

from ..errors import RateLimited
from ..extensions import limiter

_log = logging.getLogger(__name__)


class MemoryWindows:
    """A moving window per key, in this process: the times of the attempts counted in
    the last `seconds`, oldest first."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, count: int, seconds: int) -> bool:
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - seconds:
                hits.popleft()
            if len(hits) >= count:
                return False
            hits.append(now)
            if len(self._hits) > 50_000:  # bounded: windows with nothing left go
                for stale in [k for k, h in self._hits.items() if not h]:
                    del self._hits[stale]
            return True


def _hit(key: str, count: int, seconds: int) -> bool:
    """Count one attempt under `key`; False when it is over `count` in `seconds`. While
    the limiter's storage (Redis) is away every attempt is allowed, and logged: an outage
    of the limiter must not stop the chat."""
    windows = current_app.extensions.get("chat_windows")
    if windows is not None:
        return windows.hit(key, count, seconds)
    try:
        return limiter.limiter.hit(RateLimitItemPerSecond(count, seconds), "chat", key)
    except Exception as exc:
        _log.warning("rate limits not applied: %s", exc)
        return True


def check_send_rate(user_id: int) -> None:
    """Count a send; `rate_limited` when the user is over the limit."""
    if not _hit(f"send:{user_id}", *current_app.config["CHAT_RATE_LIMIT"]):
        raise RateLimited("You are sending too fast; wait a few seconds.")


def check_event_rate(user_id: int, event: str) -> None:
    """Count one use of a socket event; `rate_limited` past the user's budget for it."""
    if not _hit(f"event:{event}:{user_id}", *current_app.config["CHAT_EVENT_RATE_LIMIT"]):
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
