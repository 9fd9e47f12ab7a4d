"""`python wsgi.py` as an operator starts it, driven by the real python-socketio client.

Each test starts the server in a subprocess (eventlet and gevent in turn) on the test
database, talks to it over real HTTP and WebSocket connections, and stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
import socketio

from tests.conftest import ROOT, needs_postgres

MODES = ["eventlet", "gevent"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, database_url: str, async_mode: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "APP_CONFIG": "production",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "live-test-secret-key-0123456789",
            "JWT_SECRET_KEY": "live-test-jwt-secret-key-0123456789",
            "ASYNC_MODE": async_mode,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }
        env.pop("REDIS_URL", None)
        self.log = open(os.devnull, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "wsgi.py"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.PIPE
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not become healthy")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def register_and_login(self, email: str, name: str) -> dict:
        password = "correct horse battery"
        r = requests.post(
            self.url + "/api/auth/register",
            json={"email": email, "password": password, "name": name},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return self.login(email, password)

    def login(self, email: str, password: str) -> dict:
        r = requests.post(
            self.url + "/api/auth/login", json={"email": email, "password": password}, timeout=10
        )
        assert r.status_code == 200, r.text
        return r.json()

    def client(self, token: str, **kwargs) -> socketio.Client:
        sio = socketio.Client(reconnection=False)
        inbox: list = []
        sio.on("new_message", lambda m: inbox.append(m), namespace="/chat")
        sio.inbox = inbox
        sio.connect(
            self.url, namespaces=["/chat"], auth={"token": token}, wait_timeout=10, **kwargs
        )
        return sio


@pytest.fixture(params=MODES)
def live(request, database_url, users):
    server = LiveServer(database_url, request.param)
    clients: list[socketio.Client] = []
    server.clients = clients
    try:
        server.wait_ready()
        yield server
    finally:
        for sio in clients:
            sio.disconnect()
        server.stop()


def make_admin_token(live, users):
    admin = users.make("admin", name="Live Admin")
    return live.login(admin.email, admin.password)["access_token"]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_real_clients_chat_through_the_server(live, users):
    customer = live.register_and_login("live-carl@example.com", "Carl Live")
    cust = live.client(customer["access_token"], transports=["websocket"])
    second_tab = live.client(customer["access_token"])  # long-polling, then upgrade
    support = live.client(make_admin_token(live, users))
    live.clients += [cust, second_tab, support]

    ack = cust.call(
        "send_message",
        {"body": "Hello from a real socket", "client_id": "c1"},
        namespace="/chat",
        timeout=10,
    )
    assert ack["ok"] is True, ack
    message = ack["message"]
    assert wait_for(lambda: message in support.inbox and message in second_tab.inbox)

    reply = support.call(
        "send_message",
        {"room_id": message["room_id"], "body": "Hi Carl"},
        namespace="/chat",
        timeout=10,
    )
    assert reply["ok"] is True
    assert wait_for(lambda: reply["message"] in cust.inbox)
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
    live.clients += [a, b, support]
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
        time.sleep(0.5)  # give A's send time to reach the lock and wait there
        assert stuck == {}, "A's send should be waiting on the row lock"

        ack_b = b.call("send_message", {"body": "not blocked"}, namespace="/chat", timeout=5)
        assert ack_b["ok"] is True
        assert wait_for(lambda: ack_b["message"] in support.inbox, timeout=5)
        assert stuck == {}, "A's send must still be waiting while the lock is held"
    finally:
        blocker.rollback()
        blocker.close()
    worker.join(timeout=15)
    assert stuck.get("ok") is True and stuck["message"]["body"] == "stuck"
