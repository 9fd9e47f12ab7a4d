"""Two `python wsgi.py` processes with REDIS_URL act as one server (PostgreSQL + Redis)."""

from __future__ import annotations

import pytest
import redis
import requests

from tests.conftest import ON_POSTGRES, REDIS_URL
from tests.live import LiveServer, heard, wait_for

pytestmark = pytest.mark.skipif(
    not (ON_POSTGRES and REDIS_URL),
    reason="needs PostgreSQL and Redis: set TEST_DATABASE_URL and REDIS_URL",
)


@pytest.fixture
def pair(database_url, users):
    """Servers A and B sharing the database and Redis (with a clean Redis db)."""
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in ("chat:*", "LIMITS*"):  # the registry's keys, and the limiter's
        for key in client.scan_iter(pattern):
            client.delete(key)
    servers = [
        LiveServer(database_url, mode, REDIS_URL=REDIS_URL, CHAT_RATE_LIMIT="5/60")
        for mode in ("eventlet", "gevent")
    ]
    try:
        yield [s.start() for s in servers]
    finally:
        for s in servers:
            s.close()


def test_messages_cross_processes(pair, users):
    a, b = pair
    customer = a.register_and_login("multi@example.com", "Multi Customer")
    admin = users.make("admin")
    on_a = a.client(customer["access_token"])
    other_tab_on_b = b.client(customer["access_token"])
    support_on_b = b.client(b.login(admin.email, admin.password)["access_token"])

    ack = on_a.call("send_message", {"body": "via A"}, namespace="/chat", timeout=10)
    assert ack["ok"]
    assert wait_for(lambda: ack["message"] in heard(support_on_b, "new_message"))
    assert wait_for(lambda: ack["message"] in heard(other_tab_on_b, "new_message"))
    reply = support_on_b.call(
        "send_message",
        {"room_id": ack["message"]["room_id"], "body": "via B"},
        namespace="/chat",
        timeout=10,
    )
    assert wait_for(lambda: reply["message"] in heard(on_a, "new_message"))


def test_presence_and_rate_limit_are_shared(pair, users):
    a, b = pair
    admin = users.make("admin")
    support_on_a = a.client(a.login(admin.email, admin.password)["access_token"])
    customer = b.register_and_login("shared@example.com", "Shared")
    tab_b = b.client(customer["access_token"])
    assert heard(tab_b, "presence") == [{"admins_online": True}]  # the admin is on A
    assert wait_for(
        lambda: (
            {"user_id": customer["user"]["id"], "online": True} in heard(support_on_a, "presence")
        )
    )

    tab_a = a.client(customer["access_token"])
    answers = [
        (tab_a if i % 2 else tab_b).call("send_message", {"body": f"n{i}"}, namespace="/chat")
        for i in range(6)
    ]
    assert [x["ok"] for x in answers] == [True] * 5 + [False]
    assert answers[5]["error"]["code"] == "rate_limited"

    tab_a.disconnect()
    tab_b.disconnect()
    assert wait_for(
        lambda: (
            {"user_id": customer["user"]["id"], "online": False} in heard(support_on_a, "presence")
        )
    )


def test_logout_on_one_process_closes_the_tokens_socket_on_the_other(pair):
    a, b = pair
    tokens = a.register_and_login("cross-logout@example.com", "Cross")
    on_b = b.client(tokens["access_token"])
    r = requests.post(
        a.url + "/api/auth/logout",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=5,
    )
    assert r.status_code == 204
    assert wait_for(lambda: not on_b.connected, timeout=2)
    assert heard(on_b, "session_expired") == [{}]


def test_a_dead_process_does_not_keep_its_users_online(pair, users):
    import signal

    a, b = pair
    admin = users.make("admin")
    support_on_b = b.client(b.login(admin.email, admin.password)["access_token"])
    customer = a.register_and_login("ghost@example.com", "Ghost")
    a.client(customer["access_token"])
    user_id = customer["user"]["id"]
    assert wait_for(lambda: {"user_id": user_id, "online": True} in heard(support_on_b, "presence"))

    a.signal(signal.SIGKILL)
    a.wait_exit()
    # B reaps A's sockets once A's heartbeat key has expired (HEARTBEAT_SECONDS).
    assert wait_for(
        lambda: {"user_id": user_id, "online": False} in heard(support_on_b, "presence"), timeout=30
    )


def test_a_stalled_process_registers_its_sockets_again_and_logout_finds_them(pair, users):
    """A process frozen past its heartbeat is reaped by the other; when it wakes it
    registers its live sockets again, so presence is right and a logout on the other
    process still closes them."""
    import signal

    a, b = pair
    admin = users.make("admin")
    support_on_b = b.client(b.login(admin.email, admin.password)["access_token"])
    customer = a.register_and_login("stalled@example.com", "Stalled")
    on_a = a.client(customer["access_token"])
    user_id = customer["user"]["id"]
    shared = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    registered = lambda: bool(shared.smembers(f"chat:user:{user_id}"))  # noqa: E731
    assert wait_for(registered)

    a.signal(signal.SIGSTOP)
    try:
        assert wait_for(lambda: not registered(), timeout=40), "B reaped the stalled A"
        assert wait_for(
            lambda: {"user_id": user_id, "online": False} in heard(support_on_b, "presence")
        )
    finally:
        a.signal(signal.SIGCONT)
    assert wait_for(registered, timeout=15), "A registered its socket again"
    online, offline = {"user_id": user_id, "online": True}, {"user_id": user_id, "online": False}

    def back_online():
        events = heard(support_on_b, "presence")
        last_offline = len(events) - 1 - events[::-1].index(offline)
        return online in events[last_offline:]

    assert wait_for(back_online), "the admins heard the customer is online again"

    r = requests.post(
        b.url + "/api/auth/logout",
        headers={"Authorization": f"Bearer {customer['access_token']}"},
        timeout=5,
    )
    assert r.status_code == 204
    assert wait_for(lambda: not on_a.connected, timeout=2)
    assert heard(on_a, "session_expired") == [{}]


def test_more_sockets_at_once_than_redis_connections_lose_no_bookkeeping(database_url, users):
    """60 sockets closing together, and 60 sends broadcast together, through a Redis pool
    of two connections: they take turns (redis-py's own pool failed past its limit,
    which lost a socket's registry entry or a broadcast)."""
    import threading

    from tests.rawclient import RawClient

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    for pattern in ("chat:*", "LIMITS*"):  # the registry's keys, and the limiter's
        for key in client.scan_iter(pattern):
            client.delete(key)
    server = LiveServer(
        database_url,
        "gevent",
        REDIS_URL=REDIS_URL,
        REDIS_POOL_SIZE=2,
        CHAT_RATE_LIMIT="1000/10",
        JWT_SECRET_KEY=users.app.config["JWT_SECRET_KEY"],
    )
    try:
        server.start()
        heard_by_admin = []
        admin = RawClient(
            server.url,
            users.token(users.make("admin")),
            on_event=lambda name, payload: name == "new_message" and heard_by_admin.append(payload),
        )
        customers = [users.make("customer") for _ in range(60)]
        sockets = [RawClient(server.url, users.token(c)) for c in customers]
        assert len(client.smembers("chat:role:customer")) == 60

        answers = []
        threads = [
            threading.Thread(
                target=lambda s=s, i=i: answers.append(
                    s.call("send_message", {"body": f"together {i}"}, timeout=15)
                )
            )
            for i, s in enumerate(sockets)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [a["ok"] for a in answers] == [True] * 60
        assert wait_for(lambda: len(heard_by_admin) == 60, timeout=10), len(heard_by_admin)

        for s in sockets:
            s._close_quietly()  # all at once, no goodbye: as a proxy restart drops them
        assert wait_for(lambda: not client.smembers("chat:role:customer"), timeout=15), (
            f"{len(client.smembers('chat:role:customer'))} closed sockets still registered"
        )
        assert not [c.id for c in customers if client.exists(f"chat:user:{c.id}")]
        admin.close()
        assert "Too many connections" not in server.output()
        assert "bookkeeping failed" not in server.output()
    finally:
        server.close()
