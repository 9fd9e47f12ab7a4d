"""The fault harness: customers that stream, reconnect, resync and resend as a careful
client does (docs/RELIABILITY.md, "How a client keeps these promises"), and the
bookkeeping that checks the promises afterwards.

Each `Customer` runs one thread:
- connects (again every `reconnect_every` seconds while it cannot);
- after every (re)connect, resyncs its room with `history {after_id}` until `has_more`
  is false, then resends every client_id that has no ok acknowledgement;
- while streaming, sends a new message every `interval` seconds with a fresh client_id,
  without waiting for acks;
- an `internal_error` or `rate_limited` ack means "not stored": the message is sent
  again (same client_id) after `retry_after` seconds.

Every ack's wait is recorded. A send whose ack has not come `ack_bound` seconds after it
was written, while its socket stayed up, is a broken promise (`late`).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter

import psycopg2
import psycopg2.extensions
import requests

from tests.rawclient import RawClient, Refused

RETRYABLE = {"internal_error", "rate_limited"}
# The application_name the servers under test connect with: the faults aim at it.
APP_NAME = "chat-fault-test"


class Customer:
    def __init__(
        self,
        url: str,
        token: str,
        name: str,
        *,
        interval: float = 0.05,
        reconnect_every: float = 0.2,
        retry_after: float = 0.2,
        busy_backoff_cap: float = 3.2,
        ack_bound: float = 5.0,
        history_timeout: float = 5.0,
        cookie: str | None = None,
    ):
        self.url, self.token, self.name = url, token, name
        self.interval, self.reconnect_every = interval, reconnect_every
        self.retry_after, self.ack_bound = retry_after, ack_bound
        self.busy_backoff_cap = busy_backoff_cap
        self.busy_answers: Counter = Counter()  # client_id -> rate_limited answers so far
        self.history_timeout = history_timeout
        self.cookie = cookie  # behind deploy/nginx.conf: the process to stick to
        self.lock = threading.Lock()
        self.client: RawClient | None = None
        self.room_id: int | None = None
        self.sent: dict[str, str] = {}  # client_id -> body, every message ever meant
        self.acked: dict[str, dict] = {}  # client_id -> the stored Message, from ok acks
        self.waiting: dict[str, tuple[float, RawClient]] = {}  # written, ack not yet in
        self.retry_at: dict[str, float] = {}  # not stored yet: send again at this time
        self.seen: set[int] = set()  # message ids this customer's view holds
        self.ack_waits: list[float] = []
        self.errors: Counter = Counter()  # ack error codes
        self.late: list[tuple[str, float]] = []  # (client_id, seconds) past ack_bound
        self.resync_failures = 0
        self.connects = 0
        self.streaming = True
        self.stopped = False
        self._n = 0
        self.thread = threading.Thread(target=self._run, name=f"customer-{name}", daemon=True)

    # --- the client's loop --------------------------------------------------------

    def start(self) -> Customer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(timeout=10)
        if self.client is not None:
            self.client.close()

    def _run(self) -> None:
        next_send = time.monotonic()
        while not self.stopped:
            client = self.client
            if client is None or not client.connected:
                self._lost(client)
                if not self._connect():
                    time.sleep(self.reconnect_every)
                    continue
                client = self.client
            now = time.monotonic()
            self._check_late(now)
            for client_id in self._due_retries(now):
                self._send(client, client_id)
            if self.streaming and now >= next_send:
                self._n += 1
                client_id = f"{self.name}-{self._n}"
                with self.lock:
                    self.sent[client_id] = f"{self.name} message {self._n}"
                self._send(client, client_id)
                next_send = max(next_send + self.interval, now)
            time.sleep(0.005)

    def _connect(self) -> bool:
        try:
            self.client = RawClient(self.url, self.token, self._heard, cookie=self.cookie)
        except Refused as exc:
            self.errors[f"connect: {str(exc)[:60]}"] += 1
            self.client = None
            return False
        self.connects += 1
        if not self._resync():
            self.client.close()
            return False
        with self.lock:  # everything not yet stored goes again, now
            unacked = [c for c in self.sent if c not in self.acked]
        for client_id in unacked:
            self._send(self.client, client_id)
        return True

    def _lost(self, client: RawClient | None) -> None:
        """The socket dropped: acks still owed on it will never come."""
        if client is None:
            return
        with self.lock:
            for client_id, (_, on) in list(self.waiting.items()):
                if on is client:
                    del self.waiting[client_id]

    def _resync(self) -> bool:
        if self.room_id is None:
            return True  # nothing stored yet, nothing to catch up on
        after = max(self.seen, default=0)
        while True:
            try:
                page = self.client.call(
                    "history",
                    {"room_id": self.room_id, "after_id": after, "limit": 200},
                    timeout=self.history_timeout,
                )
            except ConnectionError:  # the server went away mid-resync: connect again
                return False
            except TimeoutError:  # the server is up but did not answer: starved
                self.resync_failures += 1
                return False
            if not page.get("ok"):
                self.errors[f"history: {page['error']['code']}"] += 1
                if page["error"]["code"] not in RETRYABLE:
                    self.resync_failures += 1
                return False
            ids = [m["id"] for m in page["messages"]]
            with self.lock:
                self.seen.update(ids)
            if not page["has_more"] or not ids:
                return True
            after = ids[-1]

    def _send(self, client: RawClient, client_id: str) -> None:
        with self.lock:
            if client_id in self.acked or client_id in self.waiting:
                return
            body = self.sent[client_id]
            written = time.monotonic()
            self.waiting[client_id] = (written, client)
            self.retry_at.pop(client_id, None)

        def answered(ack: dict) -> None:
            wait = time.monotonic() - written
            with self.lock:
                self.ack_waits.append(wait)
                self.waiting.pop(client_id, None)
                if ack.get("ok"):
                    message = ack["message"]
                    self.acked[client_id] = message
                    self.seen.add(message["id"])
                    self.room_id = message["room_id"]
                    return
                code = ack["error"]["code"]
                self.errors[code] += 1
                if code in RETRYABLE:
                    self.retry_at[client_id] = time.monotonic() + self._pause(client_id, code)

        payload = {"body": body, "client_id": client_id}
        if not client.emit("send_message", payload, answered):
            with self.lock:
                self.waiting.pop(client_id, None)

    def _pause(self, client_id: str, code: str) -> float:
        """How long a refused send waits before it goes again (call with the lock held).

        `internal_error` is retried after `retry_after`. `rate_limited` means the server
        is shedding load, so a client pauses as docs/RELIABILITY.md asks: exponential
        backoff per message, jittered, from `retry_after` up to `busy_backoff_cap`.
        Retrying every refusal after a fixed 0.2 s made twenty
        customers' backlogs a storm of refusals that kept a restarted process busy
        answering them."""
        if code != "rate_limited":
            return self.retry_after
        self.busy_answers[client_id] += 1
        ceiling = min(self.busy_backoff_cap, self.retry_after * 2 ** self.busy_answers[client_id])
        return random.uniform(self.retry_after, ceiling)

    def _due_retries(self, now: float) -> list[str]:
        with self.lock:
            return [c for c, at in self.retry_at.items() if at <= now]

    def _check_late(self, now: float) -> None:
        with self.lock:
            for client_id, (written, on) in list(self.waiting.items()):
                if on.connected and now - written > self.ack_bound:
                    self.late.append((client_id, now - written))
                    del self.waiting[client_id]  # counted once; it is resent below
                    self.retry_at[client_id] = now

    def _heard(self, name: str, payload: dict) -> None:
        if name == "new_message":
            with self.lock:
                self.seen.add(payload["id"])

    # --- what the test reads ------------------------------------------------------

    def all_acked(self) -> bool:
        with self.lock:
            return set(self.sent) == set(self.acked)

    def send_once(self, client_id: str, body: str, timeout: float = 5.0) -> dict:
        """One fresh message, sent once on the current socket: its first answer."""
        with self.lock:
            self.sent[client_id] = body
        ack = self.client.call("send_message", {"body": body, "client_id": client_id}, timeout)
        if ack.get("ok"):
            with self.lock:
                self.acked[client_id] = ack["message"]
                self.seen.add(ack["message"]["id"])
        return ack


def wait_all_acked(customers: list[Customer], timeout: float) -> bool:
    """Stop streaming and let every customer resend until everything it meant is
    stored (or `timeout` passes)."""
    for c in customers:
        c.streaming = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.all_acked() for c in customers):
            return True
        time.sleep(0.1)
    return all(c.all_acked() for c in customers)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Database:
    """Faults on the app's database (its servers connect as APP_NAME), thrown from the
    `postgres` maintenance database: PostgreSQL will not close the database one is
    connected to."""

    def __init__(self, database_url: str):
        self.name = psycopg2.extensions.parse_dsn(database_url)["dbname"]
        self.url = database_url
        self.conn = psycopg2.connect(database_url.rsplit("/", 1)[0] + "/postgres")
        self.conn.autocommit = True

    def _run(self, sql: str, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None

    def terminate_backends(self) -> int:
        rows = self._run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            APP_NAME,
        )
        return len(rows)

    def backend_pids(self, conn=None) -> list[int]:
        """The app's backends, asked over `conn` (a thread's own) or the fixture's."""
        with (conn or self.conn).cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,))
            return [pid for (pid,) in cur.fetchall()]

    def transactions_of(self, message_ids: list[int]) -> set[str]:
        """The transactions (xmin) that stored these messages."""
        with psycopg2.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT xmin::text FROM messages WHERE id = ANY(%s)", (message_ids,))
            return {xmin for (xmin,) in cur.fetchall()}

    def backends_waiting_on_locks(self) -> int:
        """How many of the app's backends are waiting for a lock right now."""
        rows = self._run(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'",
            APP_NAME,
        )
        return rows[0][0]

    def backends_cpu_seconds(self) -> float:
        """CPU seconds the app's backends have used so far (those still running)."""
        total = 0.0
        for pid in self.backend_pids():
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    @contextlib.contextmanager
    def backends_on(self, cpus: set[int], every: float = 0.2):
        """Keep the app's PostgreSQL backends on `cpus` (sched_setaffinity) while the
        block runs; the pool opens backends as it grows, so they are looked up again
        every `every` seconds."""
        stop = threading.Event()
        watcher = psycopg2.connect(self.url.rsplit("/", 1)[0] + "/postgres")
        watcher.autocommit = True

        def keep() -> None:
            while not stop.is_set():
                for pid in self.backend_pids(watcher):
                    with contextlib.suppress(ProcessLookupError):
                        os.sched_setaffinity(pid, cpus)
                stop.wait(every)

        thread = threading.Thread(target=keep, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            watcher.close()

    def refuse(self) -> None:
        self._run(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false')
        self.terminate_backends()

    def accept(self) -> None:
        self._run(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true')

    @contextlib.contextmanager
    def room_locked(self, room_id: int):
        """Hold the room's row lock, as a long transaction would: every send into the
        room waits for it."""
        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM chat_rooms WHERE id = %s FOR UPDATE", (room_id,))
            yield
        finally:
            conn.rollback()
            conn.close()

    def stored(self) -> dict[str, tuple[int, int, str]]:
        """client_id -> (id, room_id, body) of every stored message with a client_id."""
        with psycopg2.connect(self.url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT client_id, id, room_id, body FROM messages WHERE client_id IS NOT NULL"
            )
            rows = cur.fetchall()
        assert len({r[0] for r in rows}) == len(rows)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def close(self) -> None:
        self.accept()
        self.conn.close()


def check_nothing_lost_nothing_twice(customers: list[Customer], database: Database) -> None:
    stored = database.stored()
    meant = {cid: body for c in customers for cid, body in c.sent.items()}
    # Nothing sent would pass every check below: each customer's sends were read,
    # stored and acknowledged, at least one each.
    assert [c.name for c in customers if not c.acked] == [], "every customer was served"
    assert sorted(stored) == sorted(meant), "stored exactly what was meant, each once"
    for c in customers:
        for client_id, message in c.acked.items():  # as acknowledged
            assert stored[client_id][0] == message["id"]
            assert stored[client_id][2] == c.sent[client_id]
        room_ids = {stored[cid][1] for cid in c.sent}
        assert len(room_ids) == 1
        in_room = {stored[cid][0] for cid in c.sent}
        assert in_room <= c.seen, f"{c.name}'s view misses {sorted(in_room - c.seen)[:5]}"


def errors_of(customers: list[Customer]) -> Counter:
    return sum((c.errors for c in customers), Counter())


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
