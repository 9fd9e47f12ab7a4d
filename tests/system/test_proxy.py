"""Two processes behind nginx with REDIS_URL, as the README tells operators to run them
(deploy/nginx.conf, the file shipped, with only its ports changed): sticky sessions,
the WebSocket upgrade and long-polling through the proxy, a process killed, and Redis
restarted under load. Needs PostgreSQL, Debian's nginx and redis-server (.ci/run
installs nginx).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import socketio

from tests.conftest import ON_POSTGRES, ROOT
from tests.faults import Customer, Database, check_nothing_lost_nothing_twice, wait_all_acked
from tests.live import LiveServer, free_port, wait_for
from tests.rawclient import RawClient

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server")

pytestmark = [
    pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL: set TEST_DATABASE_URL=…"),
    pytest.mark.skipif(
        not os.path.exists(NGINX), reason="needs nginx (Debian's package; .ci/run installs it)"
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server (Debian's package)"),
]


class Redis:
    """A private redis-server on a free port, so restarting it touches nothing else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> Redis:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        assert wait_for(lambda: _pings(client), timeout=10), "redis-server did not start"
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class Nginx:
    """nginx with deploy/nginx.conf, its two backends and listen port swapped in."""

    def __init__(self, ports: list[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ports = ports
        self.prefix = Path(tempfile.mkdtemp(prefix="chat-nginx-"))
        (self.prefix / "tmp").mkdir()
        # nginx's workers (not root) write large request bodies under tmp/body: they
        # must be able to reach it (mkdtemp makes the folder its owner's alone).
        self.prefix.chmod(0o755)
        (self.prefix / "tmp").chmod(0o755)
        conf = (ROOT / "deploy" / "nginx.conf").read_text()
        conf = conf.replace("127.0.0.1:5001", f"127.0.0.1:{ports[0]}")
        conf = conf.replace("127.0.0.1:5002", f"127.0.0.1:{ports[1]}")
        conf = conf.replace("chat_node_5001", f"chat_node_{ports[0]}")
        conf = conf.replace("chat_node_5002", f"chat_node_{ports[1]}")
        conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        assert conf.count(str(ports[0])) >= 4 and f"listen 127.0.0.1:{self.port}" in conf
        (self.prefix / "nginx.conf").write_text(conf)
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert wait_for(lambda: _answers(self.url + "/healthz"), timeout=10), self.errors()
        return self

    def errors(self) -> str:
        log = self.prefix / "error.log"
        return log.read_text()[-3000:] if log.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.prefix, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def cluster(app, database_url):
    """Redis, two `python wsgi.py` processes sharing it, and nginx in front."""
    redis_server = Redis().start()
    servers = [
        LiveServer(
            database_url,
            "gevent",
            REDIS_URL=redis_server.url,
            TRUSTED_PROXIES=1,
            JWT_SECRET_KEY=app.config["JWT_SECRET_KEY"],
            CHAT_RATE_LIMIT="1000000/10",
            CHAT_EVENT_RATE_LIMIT="1000000/10",
        )
        for _ in range(2)
    ]
    for server in servers:
        server.start()
    proxy = Nginx([s.port for s in servers]).start()

    class Cluster:
        pass

    c = Cluster()
    c.redis, c.servers, c.proxy = redis_server, servers, proxy
    yield c
    proxy.stop()
    for server in servers:
        server.close()
    redis_server.stop()


def pinned(cluster, index: int) -> str:
    """The sticky cookie that sends a client to process `index`."""
    return f"chat_node=127.0.0.1:{cluster.servers[index].port}"


class Listener:
    """A raw socket that records what it hears, with the time it heard it."""

    def __init__(self, url: str, token: str, cookie: str | None = None):
        self.heard: list[tuple[float, str, dict]] = []
        self.client = RawClient(url, token, self._on, cookie=cookie)

    def _on(self, name: str, payload: dict) -> None:
        self.heard.append((time.monotonic(), name, payload))

    def messages(self) -> list[dict]:
        return [p for _, n, p in list(self.heard) if n == "new_message"]


def test_a_customer_and_an_admin_on_different_processes_talk_through_the_proxy(cluster, users):
    customer, admin = users.make("customer"), users.make("admin")
    alice = Listener(cluster.proxy.url, users.token(customer), cookie=pinned(cluster, 0))
    support = Listener(cluster.proxy.url, users.token(admin), cookie=pinned(cluster, 1))
    try:
        assert alice.client.node == f"127.0.0.1:{cluster.servers[0].port}"
        assert support.client.node == f"127.0.0.1:{cluster.servers[1].port}"
        sent = alice.client.call("send_message", {"body": "hello from process one"})
        assert sent["ok"], sent
        assert wait_for(lambda: [m["id"] for m in support.messages()] == [sent["message"]["id"]])
        room_id = sent["message"]["room_id"]
        reply = support.client.call("send_message", {"room_id": room_id, "body": "hi from two"})
        assert reply["ok"], reply
        assert wait_for(lambda: reply["message"]["id"] in [m["id"] for m in alice.messages()])
    finally:
        alice.client.close()
        support.client.close()


def test_a_polling_only_client_works_through_the_proxy(cluster, users):
    customer, admin = users.make("customer"), users.make("admin")
    support = Listener(cluster.proxy.url, users.token(admin))
    sio = socketio.Client(reconnection=False)
    try:
        sio.connect(
            cluster.proxy.url,
            namespaces=["/chat"],
            transports=["polling"],
            auth={"token": users.token(customer)},
            wait_timeout=10,
        )
        assert sio.transport() == "polling"
        acks = [
            sio.call("send_message", {"body": f"polled {i}"}, namespace="/chat", timeout=10)
            for i in range(5)
        ]  # several long-polling round trips, each of which must reach the same process
        assert all(a["ok"] for a in acks), acks
        ids = [a["message"]["id"] for a in acks]
        assert wait_for(lambda: [m["id"] for m in support.messages()] == ids)
        history = sio.call("history", {"room_id": acks[0]["message"]["room_id"]}, namespace="/chat")
        assert [m["id"] for m in history["messages"]] == ids
    finally:
        with contextlib.suppress(Exception):
            sio.disconnect()
        support.client.close()


def test_killing_one_process_moves_its_clients_to_the_other(cluster, users, database_url):
    tokens = [users.token(users.make("customer")) for _ in range(8)]
    customers = [
        Customer(cluster.proxy.url, t, f"k{i}", interval=0.05, cookie=pinned(cluster, i % 2))
        for i, t in enumerate(tokens)
    ]
    for c in customers:
        c.start()
    try:
        time.sleep(2.0)
        cluster.servers[0].signal(signal.SIGKILL)
        cluster.servers[0].wait_exit(timeout=10)
        time.sleep(3.0)
        assert wait_all_acked(customers, timeout=30), {
            c.name: len(set(c.sent) - set(c.acked)) for c in customers
        }
    finally:
        for c in customers:
            c.stop()
    moved = customers[0::2]
    assert all(c.connects >= 2 for c in moved), [c.connects for c in moved]
    dead = f"127.0.0.1:{cluster.servers[0].port}"
    assert [c.client.node for c in moved if c.client.node == dead] == [], "served by the other"
    check_nothing_lost_nothing_twice(customers, Database(database_url))


def test_redis_restarted_mid_load(cluster, users, database_url):
    """Redis goes away for 2 s while a customer on process one streams to an admin on
    process two. Nothing crashes, nothing acked is lost; cross-process delivery comes
    back within 5 s and presence within 20 s; what the admin missed live, it gets from
    `history` (as a page does on its next resync)."""
    customer, admin = users.make("customer"), users.make("admin")
    streamer = Customer(
        cluster.proxy.url, users.token(customer), "redis", interval=0.1, cookie=pinned(cluster, 0)
    ).start()
    support = Listener(cluster.proxy.url, users.token(admin), cookie=pinned(cluster, 1))
    try:
        assert wait_for(lambda: len(support.messages()) >= 5, timeout=10)
        cluster.redis.stop()
        time.sleep(2.0)
        cluster.redis.start()
        back = time.monotonic()
        assert wait_for(
            lambda: any(t > back for t, n, _ in list(support.heard) if n == "new_message"),
            timeout=5,
        ), "cross-process delivery did not come back within 5 s"
        delivery_back = min(t for t, n, _ in support.heard if n == "new_message" and t > back)

        def customer_online() -> bool:
            ack = support.client.call("list_rooms", {"limit": 5})
            return any(
                r["customer"]["id"] == customer.id and r["customer_online"] for r in ack["rooms"]
            )

        assert wait_for(customer_online, timeout=20, interval=0.5), "presence not right in 20 s"
        presence_back = time.monotonic() - back
        assert wait_all_acked([streamer], timeout=20)
    finally:
        streamer.stop()
    assert all(s.process.poll() is None for s in cluster.servers), "a process crashed"
    check_nothing_lost_nothing_twice([streamer], Database(database_url))
    stored_ids = sorted(m["id"] for m in streamer.acked.values())
    live_ids = {m["id"] for m in support.messages()}
    missed = [i for i in stored_ids if i not in live_ids]
    room_id = next(iter(streamer.acked.values()))["room_id"]
    resynced, after = [], 0
    while True:  # the admin's resync, as the inbox does after a reconnect
        page = support.client.call("history", {"room_id": room_id, "after_id": after, "limit": 200})
        resynced += [m["id"] for m in page["messages"]]
        if not page["has_more"]:
            break
        after = resynced[-1]
    support.client.close()
    assert resynced == stored_ids
    print(
        f"\nRedis restart: delivery back {delivery_back - back:.2f} s after Redis, presence "
        f"{presence_back:.2f} s; {len(missed)} of {len(stored_ids)} messages missed live, "
        "all back through history"
    )


def test_a_large_file_goes_through_the_proxy_and_either_process_serves_it(cluster, users):
    """deploy/nginx.conf lets a file up to the app's limit through (nginx's own default
    is 1 MB), and every process reads the same store."""
    import io

    import requests

    customer = users.make("customer")
    headers = {"Authorization": f"Bearer {users.token(customer)}"}
    body = b"a line of a long export\n" * 400_000  # 9.6 MB of text
    made = requests.post(
        cluster.proxy.url + "/api/attachments",
        files={"file": ("export.csv", io.BytesIO(body))},
        headers=headers,
        timeout=60,
    )
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    for server in cluster.servers:  # each process directly, then through the proxy
        assert requests.get(server.url + url, headers=headers, timeout=30).content == body
    assert requests.get(cluster.proxy.url + url, headers=headers, timeout=30).content == body
    too_big = requests.post(
        cluster.proxy.url + "/api/attachments",
        files={"file": ("big.csv", io.BytesIO(b"x" * (23 << 20)))},
        headers=headers,
        timeout=60,
    )
    assert too_big.status_code == 413
