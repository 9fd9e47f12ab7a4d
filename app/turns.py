"""Turns and slots: who may go ahead, the others waiting in the process, in order.

`Slots` is a semaphore that serves its waiters first come, first served. The
standard one lets a newcomer take a slot released for a waiter before the waiter
wakes; under eventlet or gevent the waiter wakes after the next batch of arrivals, so
under a steady load a few sends waited past CHAT_SEND_WAIT and were answered busy
while the mean wait was a third of a second (the overload test, tests/system).

`Turns`: one holder per key at a time.

A send locks its room's row for the length of its statement (so ids grow in commit
order). Sends into one room that reach PostgreSQL together would queue on that row
lock inside the database, each holding a pooled connection and a backend that sleeps
on the lock. Waiting for the room's turn here instead holds nothing: the connections
go to sends into other rooms (app/serving.py, `admitted`). Only within a process:
sends through other processes still meet at the row lock, which keeps them correct.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable


class Turns:
    def __init__(self) -> None:
        self._guard = threading.Lock()  # the table itself (real threads in flask run)
        self._entries: dict[Hashable, _Entry] = {}

    def acquire(self, key: Hashable, timeout: float) -> bool:
        """Wait at most `timeout` seconds for the key's turn; True once it is held."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            entry.users += 1
        if entry.lock.acquire(timeout=max(timeout, 0.0)):
            return True
        self._leave(key, entry)
        return False

    def release(self, key: Hashable) -> None:
        entry = self._entries[key]
        entry.lock.release()
        self._leave(key, entry)

    def _leave(self, key: Hashable, entry: _Entry) -> None:
        with self._guard:
            entry.users -= 1
            if not entry.users:
                del self._entries[key]

    def __len__(self) -> int:
        """Keys with a holder or a waiter (the table holds no others)."""
        return len(self._entries)


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0  # the holder and the waiters


class Slots:
    """At most `size` holders; a released slot goes to the longest waiter."""

    def __init__(self, size: int) -> None:
        self._guard = threading.Lock()
        self._free = size
        self._waiters: deque[threading.Lock] = deque()  # each held until its slot comes

    def acquire(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for a slot; True once one is held."""
        with self._guard:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        if gate.acquire(timeout=max(timeout, 0.0)):
            return True  # `release` handed its slot over
        with self._guard:
            if gate in self._waiters:
                self._waiters.remove(gate)
                return False
        return True  # handed over just as the wait ran out: the slot is held

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()  # the slot passes straight on
            else:
                self._free += 1

    @property
    def free(self) -> int:
        with self._guard:
            return self._free

    @property
    def waiting(self) -> int:
        with self._guard:
            return len(self._waiters)
