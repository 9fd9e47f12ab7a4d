"""Room turns: one send per room at a time goes to the database; the others wait here.

Every send locks its room's row for the length of its statement (so ids grow in commit
order). Sends into one room that reach PostgreSQL together queue on that row lock
inside the database: each waiter holds a pooled connection and a backend, sleeps on
the lock, wakes when the holder commits and checks the row again. Under a flood
(tests/test_faults.py, three times capacity) that is where the database's extra work
per message went. Waiting for the room's turn in the process instead costs a lock
and holds nothing: the connections go to sends into other rooms.

Only within a process: sends through other processes still meet at the row lock,
which keeps them correct.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable


class Turns:
    """`with turns.take(key, timeout)`: one holder per key; False from `acquire` when
    the turn did not come within `timeout` seconds."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # the table itself (real threads in flask run)
        self._locks: dict[Hashable, list] = {}  # key -> [lock, holders and waiters]

    def acquire(self, key: Hashable, timeout: float) -> bool:
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = [threading.Lock(), 0]
            entry[1] += 1
        if entry[0].acquire(timeout=max(timeout, 0.0)):
            return True
        self._leave(key, entry)
        return False

    def release(self, key: Hashable) -> None:
        entry = self._locks[key]
        entry[0].release()
        self._leave(key, entry)

    def _leave(self, key: Hashable, entry: list) -> None:
        with self._guard:
            entry[1] -= 1
            if not entry[1]:
                del self._locks[key]

    def __len__(self) -> int:
        """Keys with a holder or a waiter (the table holds no others)."""
        return len(self._locks)
