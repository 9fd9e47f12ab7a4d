"""Promises that need a real server process and a real PostgreSQL: acknowledged means
durable, nothing half-written, restarts lose nothing, one room per customer under a
race, and tokens that end stop working everywhere. See docs/RELIABILITY.md."""

from __future__ import annotations

import signal
import threading
import time

import psycopg2
import pytest
import requests
import socketio

from tests.conftest import needs_postgres
from tests.faults import APP_NAME, Database
from tests.live import LiveServer, heard, wait_for

pytestmark = needs_postgres

SEND_ERRORS = (TimeoutError, socketio.exceptions.SocketIOError)


def call(sio, event, payload, timeout=5):
    return sio.call(event, payload, namespace="/chat", timeout=timeout)


class Stream:
    """Sends `n` messages one after another as a careful client does: each with its own
    client_id, retried (after a reconnect if need be) until it is acknowledged ok."""

    def __init__(self, sio, n: int, prefix: str):
        self.sio, self.n, self.prefix = sio, n, prefix
        self.acked: list[dict] = []
        self.internal_errors = 0
        self.failure: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def body(self, i: int) -> str:
        return f"{self.prefix} message {i}"

    def _run(self) -> None:
        try:
            for i in range(self.n):
                self._send(i)
        except Exception as exc:  # surfaced by the test through .failure
            self.failure = exc

    def _send(self, i: int) -> None:
        payload = {"body": self.body(i), "client_id": f"{self.prefix}-{i}"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ack = call(self.sio, "send_message", payload)
            except SEND_ERRORS:
                time.sleep(0.1)  # disconnected or the ack was lost: retry the same client_id
                continue
            if ack["ok"]:
                self.acked.append(ack["message"])
                return
            # "not stored": the database failed, or the server is busy or restarting
            assert ack["error"]["code"] in ("internal_error", "rate_limited"), ack
            self.internal_errors += 1
            time.sleep(0.1)
        raise TimeoutError(f"message {i} was never acknowledged")


def call_when_connected(sio, event, payload, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(sio, event, payload)
        except SEND_ERRORS:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stored_messages(database_url: str) -> list[tuple]:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, room_id, body, client_id FROM messages ORDER BY id")
        return cur.fetchall()


def resync(sio, room_id: int) -> list[dict]:
    """What a client that lost everything rebuilds with `history` and `after_id`
    (retrying, as a client does, while it is between two connections)."""
    messages, after = [], 0
    while True:
        page = call_when_connected(
            sio, "history", {"room_id": room_id, "after_id": after, "limit": 50}
        )
        messages += page["messages"]
        if not page["has_more"]:
            return messages
        after = page["messages"][-1]["id"]


@pytest.fixture
def server(database_url, users):
    servers = []

    def make(**env):
        env.setdefault("CHAT_RATE_LIMIT", "100000/10")
        live = LiveServer(database_url, env.pop("async_mode", "eventlet"), **env)
        servers.append(live)
        return live.start()

    yield make
    for live in servers:
        live.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "term"])
def test_restart_mid_stream_loses_nothing_and_duplicates_nothing(server, database_url, stop_signal):
    live = server()
    token = live.register_and_login("stream@example.com", "Stream Customer")["access_token"]
    sio = live.client(token, reconnection=True)
    stream = Stream(sio, 60, "restart")
    stream.thread.start()
    assert wait_for(lambda: len(stream.acked) >= 20, timeout=30)

    live.signal(stop_signal)
    code = live.wait_exit(timeout=20)
    if stop_signal == signal.SIGTERM:
        assert code == 0, live.output()[-2000:]
    live.start()  # same port: the client reconnects by itself
    stream.thread.join(timeout=90)

    assert stream.failure is None, stream.failure
    rows = stored_messages(database_url)
    assert sorted(r[3] for r in rows) == sorted(f"restart-{i}" for i in range(60))
    by_client_id = {r[3]: r for r in rows}
    for message in stream.acked:  # every acknowledged message is stored, as acknowledged
        assert by_client_id[message["client_id"]][0] == message["id"]
        assert by_client_id[message["client_id"]][2] == message["body"]
    room_id = rows[0][1]
    assert [m["id"] for m in resync(sio, room_id)] == [r[0] for r in rows]


def test_database_outage_mid_stream_acks_honestly_and_recovers(server, database_url, users):
    live = server(DATABASE_URL=f"{database_url}?application_name={APP_NAME}")
    token = live.register_and_login("outage@example.com", "Outage Customer")["access_token"]
    sender = live.client(token)
    admin = users.make("admin")
    listener = live.client(live.login(admin.email, admin.password)["access_token"])
    outage = Database(database_url)

    def send(i):
        return call(sender, "send_message", {"body": f"outage {i}", "client_id": f"o-{i}"})

    try:
        before = [send(i) for i in range(30)]
        outage.refuse()
        during = [send(i) for i in range(30, 60)]
        health_during = requests.get(live.url + "/healthz", timeout=5).status_code
        outage.accept()
        after = [send(i) for i in range(60, 90)]
    finally:
        outage.close()

    assert all(a["ok"] for a in before)
    assert health_during == 503
    assert {a["error"]["code"] for a in during if not a["ok"]} == {"internal_error"}
    assert not any(a["ok"] for a in during), "no send can be stored while the database is away"
    assert all(a["ok"] for a in after), [a for a in after if not a["ok"]]  # recovered by itself
    assert requests.get(live.url + "/healthz", timeout=5).status_code == 200

    rows = stored_messages(database_url)
    acked = {a["message"]["client_id"]: a["message"] for a in before + after}
    assert sorted(r[3] for r in rows) == sorted(acked)  # nothing else, nothing partial
    for message_id, _room, body, client_id in rows:
        assert (message_id, body) == (acked[client_id]["id"], acked[client_id]["body"])
    assert wait_for(lambda: len(heard(listener, "new_message")) == 60, timeout=10)
    assert sorted(m["id"] for m in heard(listener, "new_message")) == sorted(
        m["id"] for m in acked.values()
    )  # exactly the stored messages were announced, each once


def test_fifty_racing_first_messages_make_exactly_one_room(server, database_url):
    live = server()
    token = live.register_and_login("racer@example.com", "Racer")["access_token"]
    sockets = [live.client(token) for _ in range(10)]
    barrier = threading.Barrier(50)
    acks: list[dict] = []

    def send(sio, i):
        barrier.wait(timeout=20)
        acks.append(call(sio, "send_message", {"body": f"first {i}"}, timeout=20))

    threads = [threading.Thread(target=send, args=(sockets[i % 10], i)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(acks) == 50 and all(a["ok"] for a in acks), [a for a in acks if not a["ok"]]
    assert len({a["message"]["room_id"] for a in acks}) == 1
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM chat_rooms")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM messages")
        assert cur.fetchone()[0] == 50


def test_a_retry_racing_on_two_sockets_is_stored_once(server, database_url, users):
    """The same client_id sent from two tabs at the same instant: one message, both
    acks carry it, and the admins hear it once."""
    live = server()
    token = live.register_and_login("twin@example.com", "Twin Tabs")["access_token"]
    tab1, tab2 = live.client(token), live.client(token)
    admin = users.make("admin")
    listener = live.client(live.login(admin.email, admin.password)["access_token"])
    for round_ in range(10):
        barrier = threading.Barrier(2)
        acks = []

        def send(sio, n=round_, b=barrier, out=acks):
            b.wait(timeout=10)
            out.append(call(sio, "send_message", {"body": f"twin {n}", "client_id": f"t-{n}"}))

        threads = [threading.Thread(target=send, args=(tab,)) for tab in (tab1, tab2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        assert [a["ok"] for a in acks] == [True, True], acks
        assert acks[0]["message"] == acks[1]["message"]
    rows = stored_messages(database_url)
    assert sorted(r[3] for r in rows) == sorted(f"t-{n}" for n in range(10))
    assert wait_for(lambda: len(heard(listener, "new_message")) >= 10, timeout=5)
    assert sorted(m["client_id"] for m in heard(listener, "new_message")) == sorted(
        f"t-{n}" for n in range(10)
    )


def test_a_reader_following_after_id_never_misses_a_message(server, database_url, users):
    """Ids grow in commit order inside a room: while several writers send concurrently,
    a reader that only ever asks for messages after the highest id it has seen ends
    with every stored message."""
    live = server()
    customer = live.register_and_login("busy@example.com", "Busy Room")
    admin = users.make("admin")
    admin_token = live.login(admin.email, admin.password)["access_token"]
    writers = [live.client(customer["access_token"]) for _ in range(3)]
    writers += [live.client(admin_token) for _ in range(2)]
    room_id = call(writers[0], "send_message", {"body": "opening"})["message"]["room_id"]
    headers = {"Authorization": f"Bearer {admin_token}"}
    done = threading.Event()
    seen: list[int] = []

    def read():
        after = 0
        while True:
            finished = done.is_set()
            r = requests.get(
                f"{live.url}/api/rooms/{room_id}/messages",
                params={"after_id": after, "limit": 200},
                headers=headers,
                timeout=10,
            )
            page = r.json()["messages"]
            seen.extend(m["id"] for m in page)
            after = seen[-1] if seen else after
            if finished and not page:
                return

    def write(sio, k):
        for i in range(30):
            assert call(sio, "send_message", {"room_id": room_id, "body": f"w{k}-{i}"})["ok"]

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(sio, k)) for k, sio in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    reader.join(timeout=30)
    assert sorted(seen) == [r[0] for r in stored_messages(database_url)]
    assert len(seen) == 1 + 5 * 30


def assert_refused(live, token: str) -> None:
    """A new socket with `token` gets connect_error 'unauthorized'."""
    errors = []
    again = socketio.Client(reconnection=False)
    again.on("connect_error", errors.append, namespace="/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        again.connect(live.url, namespaces=["/chat"], auth={"token": token})
    assert errors == [{"message": "unauthorized"}]


def closed_within(sio, deadline: float) -> bool:
    return wait_for(lambda: not sio.connected, timeout=max(0.0, deadline - time.time()))


def test_expired_token_closes_the_socket_within_a_second(server):
    live = server(JWT_ACCESS_TOKEN_EXPIRES=3)
    tokens = live.register_and_login("expiring@example.com", "Expiring")
    sio = live.client(tokens["access_token"])
    import jwt

    exp = jwt.decode(tokens["access_token"], options={"verify_signature": False})["exp"]
    assert closed_within(sio, exp + 1.0), "socket outlived its token by more than a second"
    assert heard(sio, "session_expired") == [{}]
    assert_refused(live, tokens["access_token"])


def test_logout_closes_the_tokens_sockets_within_a_second(server):
    live = server()
    tokens = live.register_and_login("leaving@example.com", "Leaving")
    doomed = live.client(tokens["access_token"])
    other = live.client(live.login("leaving@example.com", "correct horse battery")["access_token"])

    r = requests.post(
        live.url + "/api/auth/logout",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert r.status_code == 204
    assert closed_within(doomed, time.time() + 1.0)
    assert heard(doomed, "session_expired") == [{}]
    assert other.connected
    me = requests.get(
        live.url + "/api/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert me.status_code == 401
    assert_refused(live, tokens["access_token"])
