"""Room turns: one send per room at a time goes to the database; the others wait here,
and are stored together when the turn comes.

Every send locks its room's row for the length of its statement (so ids grow in commit
order). Sends into one room that reach PostgreSQL together queue on that row lock
inside the database: each waiter holds a pooled connection and a backend, sleeps on
the lock, wakes when the holder commits and checks the row again. Under a flood
(tests/test_faults.py, three times capacity) that is where the database's extra work
per message went. Waiting for the room's turn in the process instead costs a lock
and holds nothing: the connections go to sends into other rooms. And the sends that
waited are at hand when the turn comes: services/messages.py stores them all in one
statement, so a busy room costs one statement per turn, not one per message.

Only within a process: sends through other processes still meet at the row lock,
which keeps them correct.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable


class Turns:
    """One holder per key at a time. `join` queues a piece of work under the key and
    waits for the key's turn; whoever holds a turn may `take` the oldest queued work
    and do it for its owners (services/messages.py: sends into one room, stored
    together); `leave` ends a turn, or a wait that gave up."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # the table itself (real threads in flask run)
        self._entries: dict[Hashable, _Entry] = {}

    def join(self, key: Hashable, work=None, timeout: float = 0.0) -> _Entry | None:
        """Queue `work` (if any) under `key` and wait at most `timeout` seconds for the
        key's turn: the entry, held, or None (the work is taken back off the queue). Work
        another holder has taken by then is not given up: the wait goes on until that
        holder is done, so that what it stored is never answered as refused."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            entry.users += 1
            if work is not None:
                entry.queued.append(work)
        if entry.lock.acquire(timeout=max(timeout, 0.0)):
            return entry
        with self._guard:
            withdrawn = work is None or work in entry.queued
            if work is not None and withdrawn:
                entry.queued.remove(work)
        if not withdrawn:  # the holder took it and is doing it: its outcome is ours
            entry.lock.acquire()
            return entry
        self._leave(key, entry)
        return None

    def acquire(self, key: Hashable, timeout: float) -> bool:
        return self.join(key, None, timeout) is not None

    def take(self, entry: _Entry, limit: int, distinct=None) -> list:
        """The oldest queued work under a held turn, at most `limit`; with `distinct`,
        work whose `distinct(work)` repeats one already taken stays queued."""
        with self._guard:
            taken, kept, seen = [], [], set()
            for work in entry.queued:
                mark = distinct(work) if distinct is not None else None
                if len(taken) < limit and (mark is None or mark not in seen):
                    taken.append(work)
                    seen.add(mark)
                else:
                    kept.append(work)
            entry.queued[:] = kept
            return taken

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
    __slots__ = ("lock", "users", "queued")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0  # the holder and the waiters
        self.queued: list = []
