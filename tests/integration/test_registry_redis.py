"""The Redis registry after a stall: reaped sockets come back, and logout still closes
a socket the shared registry lost (real Redis)."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import REDIS_URL, drain, heard

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL")


@pytest.fixture
def shared():
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    for key in client.scan_iter("chat:*"):
        client.delete(key)
    yield client
    for key in client.scan_iter("chat:*"):
        client.delete(key)


def test_a_reaped_process_registers_its_sockets_again(shared):
    from app.registry import Connection, RedisRegistry, _alive_key

    stalled, other = RedisRegistry(shared, "stalled"), RedisRegistry(shared, "other")
    conn = Connection("sid-1", 7, "customer", "family-1", 2_000_000_000)
    stalled.add(conn)
    assert stalled.heartbeat() == [], "a live heartbeat re-registers nothing"

    shared.delete(_alive_key("stalled"))  # its heartbeat lapsed while it was frozen
    gone = other.reap_dead_servers()
    assert [(c.sid, ch.user) for c, ch in gone] == [("sid-1", True)]
    assert other.sids_of(7) == set()
    assert other.reap_dead_servers() == [], "reaped once"

    back = stalled.heartbeat()
    assert [(c.sid, ch.user) for c, ch in back] == [("sid-1", True)]
    assert other.sids_of(7) == {"sid-1"}
    assert other.get("sid-1").family == "family-1"
    assert other.reap_dead_servers() == [], "alive again: not reaped"


def test_reap_leaves_a_live_process_alone(shared):
    from app.registry import Connection, RedisRegistry

    live, other = RedisRegistry(shared, "live"), RedisRegistry(shared, "other")

    live.add(Connection("sid-2", 8, "admin", "family-2", None))
    assert other.reap_dead_servers() == []
    assert other.any_online("admin")


def test_logout_closes_a_local_socket_the_shared_registry_lost(
    app, http, connect, users, customer, shared
):
    from app.registry import RedisRegistry

    app.extensions["chat_registry"] = RedisRegistry(shared, "this-process")
    token = users.token(customer)
    sock = connect(auth={"token": token})
    assert sock.is_connected("/chat")
    for key in shared.scan_iter("chat:*"):  # another process reaped us meanwhile
        shared.delete(key)
    drain(sock)

    assert (
        http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code
        == 204
    )

    assert heard(sock, "session_expired") == [{}]
    assert not sock.is_connected("/chat")
