"""Turns: one holder per key at a time, the others waiting in the process.

A send locks its room's row for the length of its statement (so ids grow in commit
order). Sends into one room that reach PostgreSQL together would queue on that row
lock inside the database, each holding a pooled connection and a backend that sleeps
on the lock. Waiting for the room's turn here instead holds nothing: the connections
go to sends into other rooms (app/serving.py, `admitted`). Only within a process:
sends through other processes still meet at the row lock, which keeps them correct.
"""

from __future__ import annotations

import threading
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
