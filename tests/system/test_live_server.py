"""`python wsgi.py` as an operator starts it, driven by the real python-socketio client.

Each test starts the server in a subprocess (eventlet and gevent in turn) on the test
database, talks to it over real HTTP and WebSocket connections, and stops it.
"""

from __future__ import annotations

import threading

import pytest
import socketio

from tests.conftest import needs_postgres
from tests.live import LiveServer, heard, wait_for

MODES = ["eventlet", "gevent"]


@pytest.fixture(params=MODES)
def live(request, database_url, users):
    server = LiveServer(database_url, request.param)
    try:
        yield server.start()
    finally:
        server.close()


def make_admin_token(live, users):
    admin = users.make("admin", name="Live Admin")
    return live.login(admin.email, admin.password)["access_token"]


def test_real_clients_chat_through_the_server(live, users):
    customer = live.register_and_login("live-carl@example.com", "Carl Live")
    cust = live.client(customer["access_token"], transports=["websocket"])
    second_tab = live.client(customer["access_token"])  # long-polling, then upgrade
    support = live.client(make_admin_token(live, users))

    ack = cust.call(
        "send_message",
        {"body": "Hello from a real socket", "client_id": "c1"},
        namespace="/chat",
        timeout=10,
    )
    assert ack["ok"] is True, ack
    message = ack["message"]
    assert wait_for(
        lambda: (
            message in heard(support, "new_message") and message in heard(second_tab, "new_message")
        )
    )

    reply = support.call(
        "send_message",
        {"room_id": message["room_id"], "body": "Hi Carl"},
        namespace="/chat",
        timeout=10,
    )
    assert reply["ok"] is True
    assert wait_for(lambda: reply["message"] in heard(cust, "new_message"))
    history = cust.call("history", {"room_id": message["room_id"]}, namespace="/chat", timeout=10)
    assert [m["body"] for m in history["messages"]] == ["Hello from a real socket", "Hi Carl"]


def test_bad_token_gets_connect_error_unauthorized(live):
    sio = socketio.Client(reconnection=False)
    errors: list = []
    sio.on("connect_error", errors.append, namespace="/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(live.url, namespaces=["/chat"], auth={"token": "nope"}, wait_timeout=10)
    assert errors == [{"message": "unauthorized"}]


@needs_postgres
def test_a_send_stuck_in_postgres_does_not_stall_other_sockets(live, database_url, users):
    """Customer A's send waits on a row lock the test holds inside PostgreSQL; customer
    B's message must be stored, acked and delivered meanwhile."""
    import psycopg2

    a_tokens = live.register_and_login("live-a@example.com", "Alice")
    b_tokens = live.register_and_login("live-b@example.com", "Bob")
    a = live.client(a_tokens["access_token"])
    b = live.client(b_tokens["access_token"])
    support = live.client(make_admin_token(live, users))
    room_a = a.call("send_message", {"body": "first"}, namespace="/chat", timeout=10)
    room_a = room_a["message"]["room_id"]

    blocker = psycopg2.connect(database_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT id FROM chat_rooms WHERE id = %s FOR UPDATE", (room_a,))
        stuck: dict = {}
        worker = threading.Thread(
            target=lambda: stuck.update(
                a.call("send_message", {"body": "stuck"}, namespace="/chat", timeout=30)
            )
        )
        worker.start()

        def waiting_on_the_lock() -> bool:
            with blocker.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                return cur.fetchone()[0] == 1

        assert wait_for(waiting_on_the_lock, timeout=10), "A's send reached the row lock"
        assert stuck == {}, "A's send is waiting on the row lock"

        ack_b = b.call("send_message", {"body": "not blocked"}, namespace="/chat", timeout=5)
        assert ack_b["ok"] is True
        assert wait_for(lambda: ack_b["message"] in heard(support, "new_message"), timeout=5)
        assert stuck == {}, "A's send must still be waiting while the lock is held"
    finally:
        blocker.rollback()
        blocker.close()
    worker.join(timeout=15)
    assert stuck.get("ok") is True and stuck["message"]["body"] == "stuck"


def test_oversized_payload_closes_only_that_connection(live):
    customer = live.register_and_login("big@example.com", "Big Sender")
    other = live.register_and_login("small@example.com", "Small Sender")
    big = live.client(customer["access_token"], transports=["websocket"])
    fine = live.client(other["access_token"], transports=["websocket"])

    too_long = fine.call("send_message", {"body": "x" * 5000}, namespace="/chat", timeout=10)
    assert too_long["error"]["code"] == "validation_error"  # under 64 KiB: a clear answer
    with pytest.raises((TimeoutError, socketio.exceptions.SocketIOError)):
        big.call("send_message", {"body": "x" * 100_000}, namespace="/chat", timeout=3)
    assert wait_for(lambda: not big.connected, timeout=5)
    assert fine.call("send_message", {"body": "still served"}, namespace="/chat")["ok"]


@pytest.mark.parametrize(
    "frame",
    [
        b"\x81\x80" + b"\x00" * 4,  # an empty text frame (masked)
        b"\x81\x05hello",  # an unmasked frame from a client
        b"\xf1\x80" + b"\x00" * 4,  # reserved bits set
        b"\x81\xff" + b"\x7f" + b"\xff" * 7 + b"\x00" * 4,  # a header announcing 2^63 bytes
    ],
    ids=["empty-text", "unmasked", "reserved-bits", "huge-header"],
)
def test_a_peer_breaking_the_websocket_protocol_ends_only_its_own_connection(live, frame):
    """The stock WebSocket stacks (docs/DECISIONS.md, "The transport is the stack's
    own"): whatever a broken peer writes, the other sockets are served on."""
    import websocket

    other = live.register_and_login("steady@example.com", "Steady")
    fine = live.client(other["access_token"], transports=["websocket"])
    url = live.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    broken = websocket.create_connection(url, timeout=5)
    try:
        assert broken.recv().startswith("0")  # the Engine.IO open packet
        broken.sock.sendall(frame)
        assert fine.call("send_message", {"body": "still served"}, namespace="/chat")["ok"]
    finally:
        broken.close()
    assert fine.call("send_message", {"body": "and after"}, namespace="/chat")["ok"]
    assert live.process.poll() is None, "the server is still running"


@pytest.mark.parametrize("mode", MODES)
def test_the_development_log_has_a_line_per_page_not_per_poll(database_url, mode):
    """Issue 9: `make run` printed a line for every long-poll of every tab, and eventlet's
    deprecation notice at every start."""
    import requests

    server = LiveServer(database_url, mode, APP_CONFIG="development")
    try:
        server.start()
        for _ in range(3):
            requests.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
        assert requests.get(server.url + "/login", timeout=5).status_code == 200
        assert wait_for(lambda: "GET /login" in server.output(), timeout=5), server.output()
        output = server.output()
        assert "/socket.io/" not in output
        assert "deprecated" not in output.lower()
        assert " accepted " not in output
    finally:
        server.close()
